import { expect } from 'chai';
import { colourFlag, wantsColour } from '../../src/cli/colour.js';

describe('colour decision', () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };

  it('reads the last --color / --no-color before `--`', () => {
    expect(colourFlag(['status'])).to.equal(undefined);
    expect(colourFlag(['--no-color', 'status'])).to.equal(false);
    expect(colourFlag(['status', '--color'])).to.equal(true);
    expect(colourFlag(['--color', 'status', '--no-color'])).to.equal(false);
    expect(colourFlag(['--color=false'])).to.equal(false);
    expect(colourFlag(['status', '--', '--color'])).to.equal(undefined);
  });

  it('flag, then FORCE_COLOR, then NO_COLOR (non-empty), then "a terminal, not TERM=dumb"', () => {
    expect(wantsColour(tty, {}, undefined)).to.equal(true);
    expect(wantsColour(pipe, {}, undefined)).to.equal(false);
    expect(wantsColour(tty, { TERM: 'dumb' }, undefined)).to.equal(false);
    expect(wantsColour(tty, { NO_COLOR: '1' }, undefined)).to.equal(false);
    expect(wantsColour(tty, { NO_COLOR: '0' }, undefined)).to.equal(false);
    expect(wantsColour(tty, { NO_COLOR: '' }, undefined)).to.equal(true);
    expect(wantsColour(pipe, { FORCE_COLOR: '1' }, undefined)).to.equal(true);
    expect(wantsColour(pipe, { FORCE_COLOR: '3', NO_COLOR: '1' }, undefined)).to.equal(true);
    expect(wantsColour(tty, { FORCE_COLOR: '0' }, undefined)).to.equal(false);
    expect(wantsColour(tty, { FORCE_COLOR: 'false' }, undefined)).to.equal(false);
    expect(wantsColour(pipe, { FORCE_COLOR: '' }, undefined)).to.equal(false);
    expect(wantsColour(pipe, { NO_COLOR: '1' }, true)).to.equal(true);
    expect(wantsColour(tty, { FORCE_COLOR: '1' }, false)).to.equal(false);
  });
});
