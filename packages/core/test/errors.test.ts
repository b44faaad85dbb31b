import { describe, expect, it } from 'vitest';
import { AbortError, checkTimeoutMs, DecComError, InvalidArgumentError, MAX_TIMEOUT_MS, MessageTooLargeError, StateError } from '../src/index.js';

describe('DecComError', () => {
  it('carries its code, its class name and its cause', () => {
    const cause = new Error('below');
    const error = new StateError('STOPPED', 'the node stopped', { cause });
    expect(error).toBeInstanceOf(DecComError);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('STOPPED');
    expect(error.name).toBe('StateError');
    expect(error.message).toBe('the node stopped');
    expect(error.cause).toBe(cause);
  });

  it('captures a stack trace by default', () => {
    const error = new DecComError('TIMEOUT', 'late');
    expect(error.stack?.startsWith('DecComError: late\n')).toBe(true);
    expect(error.stack?.split('\n').some((line) => line.trim().startsWith('at '))).toBe(true);
  });

  it('skips the stack trace when asked, and leaves the runtime limit as it was', () => {
    const before = Error.stackTraceLimit;
    const error = new AbortError('gone', { captureStack: false, cause: 'why' });
    expect(error.stack).toBe('AbortError: gone');
    expect(error.cause).toBe('why');
    expect(error.code).toBe('ABORTED');
    expect(Error.stackTraceLimit).toBe(before);
    // Errors made afterwards have their stacks again.
    expect(new DecComError('TIMEOUT', 'late').stack?.includes('\n    at ')).toBe(true);
  });

  it('adds no cause property when none is given', () => {
    expect('cause' in new DecComError('TIMEOUT', 'late', { captureStack: false })).toBe(false);
  });

  it('MessageTooLargeError carries the size and the limit under one code', () => {
    const error = new MessageTooLargeError(1001, 1000);
    expect(error).toBeInstanceOf(DecComError);
    expect(error).toMatchObject({ code: 'MESSAGE_TOO_LARGE', size: 1001, limit: 1000, name: 'MessageTooLargeError' });
    expect(error.message).toBe('a message of 1001 bytes exceeds the maximum of 1000 bytes');
  });
});

describe('checkTimeoutMs', () => {
  it('passes undefined and 0 to 2^31 - 1 ms; refuses NaN, negatives, infinities and more with InvalidArgumentError', () => {
    for (const ok of [undefined, 0, 1, 1.5, MAX_TIMEOUT_MS]) expect(() => checkTimeoutMs(ok, 'x')).not.toThrow();
    for (const bad of [Number.NaN, -1, -0.5, MAX_TIMEOUT_MS + 1, Number.POSITIVE_INFINITY]) {
      expect(() => checkTimeoutMs(bad, 'thing.call')).toThrow(InvalidArgumentError);
    }
    expect(() => checkTimeoutMs(-1, 'thing.call')).toThrow('thing.call: timeoutMs must be a number from 0 to 2147483647, got -1');
  });
});
