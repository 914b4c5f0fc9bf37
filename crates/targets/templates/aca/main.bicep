// chaoslab on Azure Container Apps, in the seed's module layout: managed
// identity, monitoring (Log Analytics + Application Insights), network (VNet,
// subnets, the NSG the network fault adds DenyRedisTraffic to), Azure Managed
// Redis with an Entra ID access policy for the identity, container registry,
// Container Apps environment, the container app and the seed's two alerts.
// Written by `chaoslab export aca`; deploy with
//   az deployment group create -g RG -f main.bicep -p main.parameters.json
targetScope = 'resourceGroup'

@minLength(2)
@maxLength(24)
@description('Container app name, a DNS label; the other names derive from it.')
param appName string

@description('Azure region of every resource (short name, e.g. japaneast).')
param location string = resourceGroup().location

@description('Container image of the service. Empty deploys the infrastructure only (registry, Redis, network, environment, monitoring), so the image can be pushed to the registry first.')
param image string = ''

@minLength(4)
@maxLength(8)
@description('Lower-case letters and digits that make the globally unique names (registry, Redis) unique.')
param resourceSuffix string = take(uniqueString(resourceGroup().id, appName), 6)

@description('User-assigned managed identity of the app (Redis through Entra ID, image pulls).')
param identityName string = 'id-${appName}'

@description('Log Analytics workspace.')
param logAnalyticsName string = 'log-${appName}'

@description('Application Insights component.')
param applicationInsightsName string = 'appi-${appName}'

@description('Virtual network.')
param vnetName string = 'vnet-${appName}'

@description('Network security group of the private endpoints subnet (where Redis is reached).')
param nsgName string = 'nsg-${vnetName}-chaos'

@description('Container Apps environment.')
param environmentName string = 'cae-${appName}'

@description('Azure Managed Redis cluster.')
param redisName string = 'redis-${appName}-${resourceSuffix}'

@description('Container registry (5-50 letters and digits, globally unique).')
param registryName string = 'cr${replace(appName, '-', '')}${resourceSuffix}'

@secure()
@description('Bearer token of the service chaos API (CHAOS_API_TOKEN).')
param chaosApiToken string

@allowed([
  'aca'
  'quick'
])
@description('Probe timings: aca (the seed) or quick (a tenth, for demonstrations).')
param probePreset string = 'aca'

@minValue(0)
@maxValue(1000)
param minReplicas int = 1

@minValue(1)
@maxValue(1000)
param maxReplicas int = 5

@minValue(1)
@maxValue(100)
@description('Average CPU utilisation (percent) the scale rule keeps replicas under.')
param cpuUtilization int = 70

@description('Whether the ingress is reachable from the internet.')
param externalIngress bool = true

@description('Principal (object) id that may push images to the registry (AcrPush); empty for none.')
param pushPrincipalId string = ''

param tags object = {
  'chaoslab-app': appName
}

var deployApp = !empty(image)

module managedIdentity 'modules/managed-identity.bicep' = {
  name: 'managed-identity'
  params: {
    location: location
    tags: tags
    managedIdentityName: identityName
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    logAnalyticsName: logAnalyticsName
    applicationInsightsName: applicationInsightsName
  }
}

module network 'modules/network.bicep' = {
  name: 'network'
  params: {
    location: location
    tags: tags
    vnetName: vnetName
    nsgName: nsgName
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  params: {
    location: location
    tags: tags
    redisName: redisName
    vnetId: network.outputs.vnetId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    appPrincipalId: managedIdentity.outputs.principalId
  }
}

module containerRegistry 'modules/container-registry.bicep' = {
  name: 'container-registry'
  params: {
    location: location
    tags: tags
    registryName: registryName
    vnetId: network.outputs.vnetId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    pullPrincipalId: managedIdentity.outputs.principalId
    pushPrincipalId: pushPrincipalId
  }
}

module containerAppsEnvironment 'modules/container-apps-environment.bicep' = {
  name: 'container-apps-environment'
  params: {
    location: location
    tags: tags
    environmentName: environmentName
    logAnalyticsName: monitoring.outputs.logAnalyticsName
    containerAppsSubnetId: network.outputs.containerAppsSubnetId
  }
}

module containerApp 'modules/container-app.bicep' = if (deployApp) {
  name: 'container-app'
  params: {
    location: location
    tags: tags
    containerAppName: appName
    environmentId: containerAppsEnvironment.outputs.environmentId
    image: image
    managedIdentityId: managedIdentity.outputs.id
    managedIdentityClientId: managedIdentity.outputs.clientId
    registryLoginServer: containerRegistry.outputs.loginServer
    redisHost: redis.outputs.host
    redisPort: redis.outputs.port
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    chaosApiToken: chaosApiToken
    probePreset: probePreset
    minReplicas: minReplicas
    maxReplicas: maxReplicas
    cpuUtilization: cpuUtilization
    externalIngress: externalIngress
  }
}

module alertRules 'modules/alert-rules.bicep' = if (deployApp) {
  name: 'alert-rules'
  params: {
    location: location
    tags: tags
    containerAppName: appName
  }
  dependsOn: [
    containerApp
  ]
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_CONTAINER_APP_NAME string = appName
output AZURE_CONTAINER_APPS_ENVIRONMENT_ID string = containerAppsEnvironment.outputs.environmentId
output AZURE_MANAGED_IDENTITY_ID string = managedIdentity.outputs.id
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = managedIdentity.outputs.clientId
output AZURE_CONTAINER_REGISTRY_NAME string = containerRegistry.outputs.name
output AZURE_CONTAINER_REGISTRY_LOGIN_SERVER string = containerRegistry.outputs.loginServer
output AZURE_REDIS_HOST string = redis.outputs.host
output AZURE_REDIS_PORT int = redis.outputs.port
output AZURE_NSG_NAME string = network.outputs.nsgName
output AZURE_CONTAINER_APP_DEPLOYED bool = deployApp
