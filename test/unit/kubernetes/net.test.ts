import { describe, expect, it } from 'vitest';
import { BindTable, bindFor, bindKey, parseCidr } from '../../../adapters/kubernetes/net.js';
import { InputError } from '../../../core/errors.js';

describe('bindKey', () => {
  it.each([
    [':80', '*:80'],
    ['*:80', '*:80'],
    ['0.0.0.0:80', '*:80'],
    ['[::]:80', '*:80'],
    ['10.0.0.5:443', '10.0.0.5:443'],
    ['[2001:DB8:0::1]:443', '[2001:db8::1]:443'],
  ])('spells %s as %s', (bind, key) => {
    expect(bindKey(bind)).toBe(key);
  });

  it.each(['80', ':0', ':65536', '[zz::1]:80', '300.1.1.1:80', 'host:80'])(
    'refuses %j with an InputError',
    (bind) => {
      expect(() => bindKey(bind)).toThrow(InputError);
    },
  );

  it('round-trips with bindFor', () => {
    expect(bindKey(bindFor(undefined, 80))).toBe('*:80');
    expect(bindKey(bindFor('fd00:0:0::5', 80))).toBe('[fd00::5]:80');
  });
});

describe('BindTable', () => {
  it('treats a wildcard as clashing with every address on its port, and back', () => {
    const t = new BindTable();
    t.add('10.0.0.5:80', 'A');
    expect(t.holderOf('*:80')).toBe('A');
    expect(t.holderOf('10.0.0.6:80')).toBeUndefined();
    expect(t.holderOf('10.0.0.5:81')).toBeUndefined();
    t.add('*:443', 'B');
    expect(t.holderOf('[fd00::5]:443')).toBe('B');
  });

  it('clones without sharing later additions', () => {
    const t = new BindTable();
    const c = t.clone();
    c.add('*:80', 'A');
    expect(t.holderOf('*:80')).toBeUndefined();
  });
});

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['10.1.2.3/8', '10.0.0.0/8'],
    [' 192.168.1.77/24 ', '192.168.1.0/24'],
    ['203.0.113.9/32', '203.0.113.9/32'],
    ['255.255.255.255/1', '128.0.0.0/1'],
    ['1.2.3.4/0', '0.0.0.0/0'],
    ['2001:DB8::1/32', '2001:db8::/32'],
    ['2001:db8:abcd:12ff::1/60', '2001:db8:abcd:12f0::/60'],
    ['::ffff:10.1.2.3/104', '::ffff:a00:0/104'],
    ['fe80::1/128', 'fe80::1/128'],
  ])('reads %j as %s', (text, cidr) => {
    expect(parseCidr(text)).toBe(cidr);
  });

  it.each([
    '10.0.0.0',
    '10.0.0.0/33',
    '10.0.0.0/08',
    '010.0.0.0/8',
    '::/129',
    'fe80::1%eth0/64',
    'example.com/24',
    '',
  ])('refuses %j', (text) => {
    expect(parseCidr(text)).toBeNull();
  });
});
