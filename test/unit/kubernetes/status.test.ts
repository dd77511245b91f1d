import { describe, expect, it } from 'vitest';
import { ingressEqual, ingressFor } from '../../../adapters/kubernetes/status.js';
import { InputError } from '../../../core/errors.js';
import { loadServices, named } from '../../helpers/kubernetes-fixtures.js';

describe('ingressFor', () => {
  it('lists each LB address once, sorted, with ipMode Proxy', () => {
    expect(ingressFor(['10.0.0.11', '10.0.0.10', '10.0.0.11'])).toEqual([
      { ip: '10.0.0.10', ipMode: 'Proxy' },
      { ip: '10.0.0.11', ipMode: 'Proxy' },
    ]);
  });

  it('takes the spec ingress list: hostnames without ipMode, IPv6 canonical', () => {
    expect(ingressFor([{ hostname: 'lb.example.com' }, { ip: '2001:DB8::0:1' }])).toEqual([
      { ip: '2001:db8::1', ipMode: 'Proxy' },
      { hostname: 'lb.example.com' },
    ]);
  });

  it('refuses an address that is not an IP literal', () => {
    expect(() => ingressFor(['lb.example.com'])).toThrow(InputError);
  });
});

describe('ingressEqual', () => {
  const web = named(loadServices('services.yaml'), 'default/web');

  it('is true for the status the fixture Service already shows, so the patch is skipped', () => {
    expect(ingressEqual(web.status?.loadBalancer?.ingress, ingressFor(['10.0.0.10']))).toBe(true);
  });

  it('is false when an address is added, removed or reordered', () => {
    const current = ingressFor(['10.0.0.10', '10.0.0.11']);
    expect(ingressEqual(current, ingressFor(['10.0.0.10']))).toBe(false);
    expect(ingressEqual(current, ingressFor(['10.0.0.10', '10.0.0.11', '10.0.0.12']))).toBe(false);
    expect(ingressEqual([...current].reverse(), current)).toBe(false);
  });

  it('is false for an empty status and a desired address', () => {
    expect(ingressEqual(undefined, ingressFor(['10.0.0.10']))).toBe(false);
    expect(ingressEqual([], [])).toBe(true);
  });

  it('accepts a missing ipMode (API servers before 1.30 drop it) but not a different one', () => {
    expect(ingressEqual([{ ip: '10.0.0.10' }], ingressFor(['10.0.0.10']))).toBe(true);
    expect(ingressEqual([{ ip: '10.0.0.10', ipMode: 'VIP' }], ingressFor(['10.0.0.10']))).toBe(
      false,
    );
  });

  it('is false when the current entry carries port errors lbsync did not write', () => {
    const current = [
      { ip: '10.0.0.10', ipMode: 'Proxy', ports: [{ port: 80, protocol: 'TCP', error: 'x' }] },
    ];
    expect(ingressEqual(current, ingressFor(['10.0.0.10']))).toBe(false);
  });
});
