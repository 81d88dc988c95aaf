import { describe, expect, it } from 'vitest';
import { ipScope, isPublicIp } from '../../src/enrich/ip-scope.js';

describe('ipScope', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['2a00:1450:4001::1', 'public'],
    ['172.17.0.1', 'private'],
    ['10.1.2.3', 'private'],
    ['192.168.1.1', 'private'],
    ['fd00::1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['169.254.1.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['100.64.0.1', 'cgnat'],
    ['224.0.0.1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['192.0.2.1', 'reserved'],
    ['198.51.100.3', 'reserved'],
    ['203.0.113.9', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['::ffff:10.0.0.1', 'private'],
    ['not an ip', 'reserved'],
  ])('%s is %s', (ip, scope) => {
    expect(ipScope(ip)).toBe(scope);
  });

  it('only public addresses are public', () => {
    expect(isPublicIp('1.1.1.1')).toBe(true);
    expect(isPublicIp('172.17.0.1')).toBe(false);
  });
});
