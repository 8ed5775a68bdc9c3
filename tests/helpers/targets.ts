/** A targets file for tests: the plan's 2023 figures, one of them changeable (a reload test moves it). */
export function targetsYaml(industrialInternetAccess = 0.56): string {
  return `source: test\nyear: 2023\ntargets: { ncRateKeyProcesses: 0.7, robotsPer10k: 160, industrialInternetAccess: ${industrialInternetAccess}, keyLinksDigitalised: 0.43, rdDesignTools: 0.84, networkedCollaboration: 0.35 }\n`;
}
