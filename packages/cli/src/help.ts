/** The text of `deccom --help` and `deccom <command> --help`. */

const NETWORK_FLAGS = `  --host <ip>              interface to bind (default: 127.0.0.1, or all interfaces when a
                           bootstrap address is not on loopback; 0.0.0.0 or :: to be reachable)
  --port <n>               UDP port (default: 0, a free port)
  --identity-file <path>   keep the node's Ed25519 identity (so its id) in this file; created if missing
  --noise <mode>           encrypt (default) or sign-only; every node of a network must agree
  --timeout <seconds>      how long joining and each network operation may take (default: 10)
  -h, --help               this help`;

export const HELP: Record<string, string> = {
  main: `deccom: DecCom peer-to-peer nodes from the command line

Usage: deccom <command> [flags]

Commands:
  bootstrap      run a bootstrap node others join through
  chat           chat with peers, encrypted, by id or by topic
  send-file      send a file over reliable UDP (rudp) or TCP, with a progress bar
  receive-file   receive files into a directory
  status         join a network, print what this node sees, and exit
  describe       print a stack diagram (Mermaid) of any command's node

Run 'deccom <command> --help' for its flags. Flags: --help, --version.

Exit codes: 0 ok, 1 unexpected error, 2 bad command line, 3 network (bootstrap
unreachable, peer not found or silent), 4 file (unreadable input, unwritable output,
bad identity file), 5 integrity (SHA-256 of a received file differs).

Example, on one machine:
  deccom bootstrap --port 7000
  deccom chat --bootstrap 127.0.0.1:7000 --name alice
  deccom chat --bootstrap 127.0.0.1:7000 --name bob
`,
  bootstrap: `Usage: deccom bootstrap [--port <n>] [--host <ip>] [--identity-file <path>]

Runs a bootstrap node: udp > keepalive > kademlia > noise. Other nodes join the network
through its address. Prints its id and address, logs peers joining and leaving, and runs
until SIGINT (Ctrl-C) or SIGTERM, then stops cleanly (exit code 0).

Flags:
  --port <n>               UDP port (default: 7000; 0 picks a free one)
  -b, --bootstrap <h:p,..> join an existing network too (several bootstrap nodes)
${NETWORK_FLAGS.split('\n').filter((line) => !line.includes('--port')).join('\n')}
`,
  chat: `Usage: deccom chat --bootstrap <host:port>[,<host:port>...] [--name <name>] [--topic <topic>]

Joins the network through the bootstrap nodes, announces the topic, and reads lines from
stdin (a terminal or a pipe):
  <text>                   send to everyone who announced the topic
  /msg <id-prefix> <text>  send to one peer, by the first hex digits of its id
  /peers                   list known peers (and who is in the topic)
  /status                  this node's address, peers, sessions and counters
  /quit                    leave (so does end of input, unless --stay)
Incoming messages print on stdout as '[topic] name (id): text' or '[direct] name (id): text'.
Every message travels in a Noise session bound to the peers' identities (encrypted).

Flags:
  -b, --bootstrap <h:p,..> bootstrap addresses (required; the flag may repeat)
  --name <name>            your name in messages (default: your user name)
  --topic <topic>          the room to announce and talk in (default: lobby)
  --stay                   keep running after the end of stdin, until SIGINT / SIGTERM
${NETWORK_FLAGS}
`,
  'send-file': `Usage: deccom send-file <path> --to <id|host:port> [--transport rudp|tcp] [--bootstrap <host:port>,...]

Sends one file to a node running 'deccom receive-file', with a progress bar on stderr
(plain lines at every quarter when stderr is not a terminal), then prints the rate in
MB/s and the SHA-256, once the receiver confirmed the hash it computed matches.

  --to <host:port>         the receiver's address (printed by receive-file); joins through it
                           when no --bootstrap is given
  --to <id>                the receiver's node id, or the first hex digits of it; found through
                           the network (needs --bootstrap)

Flags:
  --to <id|host:port>      the receiver (required)
  --transport <t>          rudp (default: reliable UDP, whole file in memory, up to 1 GiB) or
                           tcp (a stream of any size, read from disk as it goes)
  -b, --bootstrap <h:p,..> bootstrap addresses
${NETWORK_FLAGS}
`,
  'receive-file': `Usage: deccom receive-file --out <dir> [--once] [--bootstrap <host:port>,...]

Receives files sent by 'deccom send-file' over either transport (rudp or tcp), writes each
into <dir> (never over an existing file), checks its SHA-256 against the sender's and
tells the sender. Prints its id and address; runs until SIGINT / SIGTERM, or until the
first file with --once (exit code 0, or 5 if the hash differs).

Flags:
  --out <dir>              directory to write into (required; created if missing)
  --once                   exit after the first file
  -b, --bootstrap <h:p,..> join a network (optional: a sender may use this node's address)
${NETWORK_FLAGS}
`,
  status: `Usage: deccom status --bootstrap <host:port>[,...] [--topic <topic>]

Joins the network, waits a moment, and prints the round-trip time to each bootstrap node,
the peers this node learned, the providers of a topic (with --topic) and the counters of
every layer. Exit code 0 when it joined, 3 when no bootstrap node answered.

Flags:
  -b, --bootstrap <h:p,..> bootstrap addresses (required)
  --topic <topic>          also look up who announced this chat topic
${NETWORK_FLAGS}
`,
  describe: `Usage: deccom describe [--stack <stack>] [--format mermaid|text|json]

Prints the stack a command runs, as it wires itself (node.mermaid(), node.describe()).
Nothing is started and no socket is opened.

Flags:
  --stack <stack>          bootstrap, chat (default), status, send-rudp, send-tcp, receive
  --format <format>        mermaid (default), text or json
  -h, --help               this help
`,
};
