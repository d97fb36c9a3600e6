/**
 * The developer page says how long a rotated-out secret keeps working in words a person reads:
 * a grace under half an hour used to read "0 hours".
 */
import assert from 'node:assert/strict';
import { spokenDuration } from '../../src/registration/developer-secret.js';

describe('developer page: a secret rotation grace in words', () => {
  it('says hours, minutes or seconds, singular for one, never "0 hours"', () => {
    assert.equal(spokenDuration(86_400), '24 hours');
    assert.equal(spokenDuration(3_600), '1 hour');
    assert.equal(spokenDuration(5_400), '2 hours');
    assert.equal(spokenDuration(1_200), '20 minutes');
    assert.equal(spokenDuration(60), '1 minute');
    assert.equal(spokenDuration(30), '30 seconds');
    assert.equal(spokenDuration(1), '1 second');
  });
});
