import { describe, expect, it } from 'vitest';
import { AbortError, DecComError, StateError } from '../src/index.js';

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
});
