/**
 * The key every per-address limit counts a client under (src/http/address-key.ts): an IPv6 client
 * by its /64, an IPv4-mapped one as its IPv4 address, every spelling of one network alike.
 */
import assert from 'node:assert/strict';
import { addressKey } from '../../src/http/address-key.js';

describe('unit: the address key of per-address limits', () => {
  it('counts the addresses of one IPv6 /64 as one, whatever their spelling; another /64 apart', () => {
    const key = addressKey('2001:db8:1:2::1');
    assert.equal(key, '2001:db8:1:2::/64');
    for (const spelling of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0DB8:0001:0002:0:0:0:99', '2001:db8:1:2:a:b:c:d', '[2001:db8:1:2::7]', '[2001:db8:1:2::7]:443', 'fe80::1%eth0'.replace('fe80::1', '2001:db8:1:2::5'), '2001:db8:1:2:0:0:1.2.3.4']) {
      assert.equal(addressKey(spelling), key, spelling);
    }
    assert.notEqual(addressKey('2001:db8:1:3::1'), key);
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('2001:db8::'), '2001:db8:0:0::/64');
  });

  it('an IPv4 client is its IPv4 address, however a socket or a proxy wrote it', () => {
    for (const spelling of ['192.0.2.7', '::ffff:192.0.2.7', '::FFFF:c000:207', '192.0.2.7:51234']) assert.equal(addressKey(spelling), '192.0.2.7', spelling);
    assert.notEqual(addressKey('192.0.2.8'), addressKey('192.0.2.7'), 'IPv4 addresses are counted one by one');
  });

  it('anything else is keyed as it is (never an exception)', () => {
    for (const odd of ['', 'unknown', 'not:an:address', '1:2:3', '[::1', '2001:db8::1::2']) assert.equal(addressKey(odd), odd);
  });
});
