/**
 * Injectable logging. Library code never prints: it calls the logger handed to it,
 * which is silent unless the user passes one or sets `DECCOM_LOG`.
 *
 * `DECCOM_LOG` selects layers and a level: `DECCOM_LOG=*` (everything at debug),
 * `DECCOM_LOG=kademlia,udp:info`, `DECCOM_LOG=*:warn`.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger for a named component (a layer), e.g. `logger.child('kademlia')`. */
  child(component: string): Logger;
  /** Whether `level` would be written: lets hot paths skip building fields. */
  enabled(level: LogLevel): boolean;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const noop = (): void => {};

/** A logger that drops everything (the default). */
export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
  enabled: () => false,
};

export interface LogRecord {
  time: number;
  level: LogLevel;
  component: string;
  message: string;
  fields?: LogFields | undefined;
}

/**
 * A logger that hands records to `sink`, keeping those whose component is selected by
 * `filter` (a `DECCOM_LOG`-style string) at or above its level.
 */
export function createLogger(sink: (record: LogRecord) => void, filter = '*', component = 'node'): Logger {
  const rules = parseFilter(filter);
  const levelFor = (name: string): number => {
    let chosen: number | undefined;
    for (const rule of rules) {
      if (rule.component === '*' || name === rule.component || name.startsWith(`${rule.component}.`) || name.endsWith(`/${rule.component}`)) {
        chosen = rule.level;
      }
    }
    return chosen ?? Infinity;
  };
  const make = (name: string): Logger => {
    const threshold = levelFor(name);
    const write =
      (level: LogLevel) =>
      (message: string, fields?: LogFields): void => {
        if (LEVELS[level] >= threshold) sink({ time: Date.now(), level, component: name, message, fields });
      };
    return {
      debug: write('debug'),
      info: write('info'),
      warn: write('warn'),
      error: write('error'),
      child: (sub) => make(`${name}/${sub}`),
      enabled: (level) => LEVELS[level] >= threshold,
    };
  };
  return make(component);
}

function parseFilter(filter: string): { component: string; level: number }[] {
  return filter
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const [component = '*', level = 'debug'] = part.split(':');
      return { component, level: LEVELS[level as LogLevel] ?? LEVELS.debug };
    });
}

/** Writes one JSON line per record to stderr. Used only when the user opts in. */
export function stderrLogger(filter = '*'): Logger {
  return createLogger((record) => {
    process.stderr.write(`${JSON.stringify(record, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}\n`);
  }, filter);
}

/** The default logger: silent, unless `DECCOM_LOG` is set in the environment. */
export function defaultLogger(): Logger {
  const filter = globalThis.process?.env?.['DECCOM_LOG'];
  return filter ? stderrLogger(filter) : silentLogger;
}
