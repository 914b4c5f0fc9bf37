// The app's user-assigned managed identity: Redis (Entra ID access policy)
// and the registry (AcrPull) trust it, and the service gets tokens for it
// through AZURE_CLIENT_ID (the seed's application start-up flow).
param location string
param tags object
param managedIdentityName string

resource managedIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: managedIdentityName
  location: location
  tags: tags
}

output id string = managedIdentity.id
output name string = managedIdentity.name
output principalId string = managedIdentity.properties.principalId
output clientId string = managedIdentity.properties.clientId
