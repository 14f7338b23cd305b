param location string = resourceGroup().location

resource vnet 'Microsoft.Network/virtualNetworks@2023-09-01' = {
  name: 'vnet1'
  location: location
  properties: { addressSpace: { addressPrefixes: [ '10.0.0.0/16' ] } }
}
