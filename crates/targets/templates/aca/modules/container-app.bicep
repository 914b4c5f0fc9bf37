// The service (`chaoslab serve`, port 8000) as a container app: the
// user-assigned identity (Redis through Entra ID, image pulls), the seed's
// probes (liveness TCP 60/10/10/5; readiness GET /health 10/5/3/2/2, or the
// quick preset at a tenth), 0.25 CPU / 0.5Gi, a CPU scale rule (70 %, 1-5
// replicas), single-revision mode so a failed revision leaves the previous
// one serving, and the chaos API behind a bearer token held as a secret.
param location string
param tags object
param containerAppName string
param environmentId string
param image string
param managedIdentityId string
param managedIdentityClientId string
param registryLoginServer string
param redisHost string
param redisPort int
param applicationInsightsName string
@secure()
param chaosApiToken string
param probePreset string = 'aca'
param minReplicas int = 1
param maxReplicas int = 5
param cpuUtilization int = 70
param externalIngress bool = true

var port = 8000
var timings = {
  aca: {
    liveness: {
      initialDelaySeconds: 60
      periodSeconds: 10
      timeoutSeconds: 10
      failureThreshold: 5
    }
    readiness: {
      initialDelaySeconds: 10
      periodSeconds: 5
      timeoutSeconds: 3
      failureThreshold: 2
      successThreshold: 2
    }
  }
  quick: {
    liveness: {
      initialDelaySeconds: 6
      periodSeconds: 1
      timeoutSeconds: 1
      failureThreshold: 5
    }
    readiness: {
      initialDelaySeconds: 1
      periodSeconds: 1
      timeoutSeconds: 1
      failureThreshold: 2
      successThreshold: 2
    }
  }
}
var liveness = timings[probePreset].liveness
var readiness = timings[probePreset].readiness

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource containerApp 'Microsoft.App/containerApps@2025-01-01' = {
  name: containerAppName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${managedIdentityId}': {}
    }
  }
  properties: {
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: externalIngress
        targetPort: port
        transport: 'auto'
        allowInsecure: false
      }
      registries: [
        {
          server: registryLoginServer
          identity: managedIdentityId
        }
      ]
      secrets: [
        {
          name: 'appinsights-connection-string'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'chaos-api-token'
          value: chaosApiToken
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'chaoslab'
          image: image
          args: [
            'serve'
          ]
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          probes: [
            {
              type: 'Liveness'
              tcpSocket: {
                port: port
              }
              initialDelaySeconds: liveness.initialDelaySeconds
              periodSeconds: liveness.periodSeconds
              timeoutSeconds: liveness.timeoutSeconds
              failureThreshold: liveness.failureThreshold
              successThreshold: 1
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/health'
                port: port
                scheme: 'HTTP'
              }
              initialDelaySeconds: readiness.initialDelaySeconds
              periodSeconds: readiness.periodSeconds
              timeoutSeconds: readiness.timeoutSeconds
              failureThreshold: readiness.failureThreshold
              successThreshold: readiness.successThreshold
            }
          ]
          env: [
            {
              name: 'APP_HOST'
              value: '0.0.0.0'
            }
            {
              name: 'APP_PORT'
              value: string(port)
            }
            {
              name: 'REDIS_HOST'
              value: redisHost
            }
            {
              name: 'REDIS_PORT'
              value: string(redisPort)
            }
            {
              name: 'REDIS_SSL'
              value: 'true'
            }
            {
              name: 'REDIS_USE_ENTRA_ID'
              value: 'true'
            }
            {
              name: 'AZURE_CLIENT_ID'
              value: managedIdentityClientId
            }
            {
              name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
              secretRef: 'appinsights-connection-string'
            }
            {
              name: 'CHAOS_API_TOKEN'
              secretRef: 'chaos-api-token'
            }
            {
              name: 'LOG_LEVEL'
              value: 'INFO'
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'cpu-rule'
            custom: {
              type: 'cpu'
              metadata: {
                type: 'Utilization'
                value: string(cpuUtilization)
              }
            }
          }
        ]
      }
    }
  }
}

output id string = containerApp.id
output name string = containerApp.name
output uri string = 'https://${containerApp.properties.configuration.ingress.fqdn}'
