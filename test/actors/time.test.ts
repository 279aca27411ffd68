import { describe, expect, it } from 'vitest';
import { cyclesToPs, DurationError, formatDuration, parseDuration } from '../../src/actors/time.js';

describe('time', () => {
  it('parses durations exactly in picoseconds', () => {
    expect(parseDuration('250ns')).toBe(250_000);
    expect(parseDuration('3us')).toBe(3_000_000);
    expect(parseDuration('0.1us')).toBe(100_000);
    expect(parseDuration('2ms')).toBe(2_000_000_000);
    expect(parseDuration('1s')).toBe(1_000_000_000_000);
    expect(parseDuration(42)).toBe(42);
  });
  it('refuses what is not a whole number of picoseconds', () => {
    expect(() => parseDuration('1.5ps')).toThrow(DurationError);
    expect(() => parseDuration('fast')).toThrow(DurationError);
    expect(() => parseDuration(-1)).toThrow(DurationError);
  });
  it('converts cycles at the clock', () => {
    expect(cyclesToPs(1350, 3_000_000_000)).toBe(450_000);
    expect(cyclesToPs(1, 3_000_000_000)).toBe(333);
  });
  it('formats', () => {
    expect(formatDuration(2_500_000)).toBe('2.5us');
    expect(formatDuration(12)).toBe('12ps');
  });
});
