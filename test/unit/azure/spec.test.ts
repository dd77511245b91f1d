import { describe, expect, it } from 'vitest';
import { runCommandSection } from '../../../adapters/azure/provider.js';
import { validateSpec } from '../../../adapters/spec.js';

function azureSpec(staging: unknown): unknown {
  return {
    name: 'prod-weu',
    cloud: 'azure',
    workers: {
      azure: {
        subscriptionId: '00000000-0000-4000-8000-000000000001',
        scaleSets: [{ resourceGroup: 'mc', name: 'aks-vmss' }],
      },
    },
    loadBalancers: { azure: { vms: [{ resourceGroup: 'rg', name: 'lb' }], staging } },
    services: [{ name: 'https', bind: ':443', nodePort: 31443 }],
  };
}

describe('the azure staging section of the spec', () => {
  it('defaults sasMinutes to 15', () => {
    // Act
    const spec = validateSpec(
      azureSpec({ containerUrl: 'https://acct.blob.core.windows.net/lbsync' }),
    );

    // Assess
    expect(runCommandSection(spec)?.staging).toEqual({
      containerUrl: 'https://acct.blob.core.windows.net/lbsync',
      sasMinutes: 15,
    });
  });

  it.each([
    { url: 'http://acct.blob.core.windows.net/lbsync', reason: 'must be an https URL' },
    { url: 'https://acct.blob.core.windows.net/', reason: 'must name a container' },
  ])('refuses $url with "$reason"', ({ url, reason }) => {
    expect(() => validateSpec(azureSpec({ containerUrl: url }))).toThrow(
      `loadBalancers.azure.staging.containerUrl: ${reason}`,
    );
  });
});
