import { expect } from 'chai';
import { editDistance, nearestName } from '../../src/selectors/nearest-name.js';

describe('nearestName', () => {
  it('counts insertions, deletions, substitutions and neighbour swaps as one edit each', () => {
    expect(editDistance('web1', 'web1')).to.equal(0);
    expect(editDistance('wbe1', 'web1')).to.equal(1);
    expect(editDistance('deplyo', 'deploy')).to.equal(1);
    expect(editDistance('web', 'web1')).to.equal(1);
    expect(editDistance('kitten', 'sitting')).to.equal(3);
    expect(editDistance('', 'abc')).to.equal(3);
  });

  it('suggests a near name only: within a third of the word (1 to 3 edits); ties go to the first', () => {
    expect(nearestName('deplyo', ['plan', 'deploy', 'rollback'])).to.equal('deploy');
    expect(nearestName('web3', ['web1', 'web2'])).to.equal('web1');
    expect(nearestName('WEB1', ['web1'])).to.equal('web1');
    expect(nearestName('x', ['plan', 'deploy'])).to.equal(undefined);
    expect(nearestName('frobnicate', ['init', 'deploy'])).to.equal(undefined);
    expect(nearestName('web1', ['web1'])).to.equal(undefined);
  });
});
