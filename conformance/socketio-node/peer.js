// A real Socket.IO 2 (Engine.IO 3) server or client for stormcheck's conformance runs.
//   node peer.js server --port P --interval MS --timeout MS
//   node peer.js client --ports P1,P2 --retry MS
// One JSON line per event on stdout (listening, open, close with `judged`, refused), as the
// Python peers print them. Engine.IO 3: the client pings every pingInterval (from its handshake)
// and gives up when no pong comes within pingTimeout; the server closes a socket that sent no
// ping within pingInterval + pingTimeout. Either close has reason "ping timeout": the judge.
'use strict';

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : fallback;
}

function emit(ev, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ ev: ev }, fields)) + '\n');
}

function server() {
  const port = Number(arg('port'));
  const http = require('http').createServer();
  const io = require('socket.io')(http, {
    pingInterval: Number(arg('interval')),
    pingTimeout: Number(arg('timeout')),
    transports: ['websocket'],
  });
  io.on('connection', (socket) => {
    emit('open', { conn: socket.id });
    socket.on('disconnect', (reason) => emit('close', { conn: socket.id, judged: reason === 'ping timeout', why: reason }));
  });
  http.listen(port, '127.0.0.1', () => emit('listening', { port: port }));
  const stop = () => {
    // A restart: every socket is closed by the server, not by a judge.
    Object.values(io.sockets.connected).forEach((s) => s.disconnect(true));
    http.close();
    setTimeout(() => process.exit(0), 50);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function client() {
  const ports = arg('ports').split(',').map(Number);
  const retry = Number(arg('retry', '100'));
  const ioc = require('socket.io-client');
  let n = 0;
  let current = null;
  let stopping = false;
  function attempt() {
    if (stopping) return;
    const port = ports[n++ % ports.length];
    const socket = ioc('http://127.0.0.1:' + port, { reconnection: false, transports: ['websocket'], timeout: 4 * retry + 1000 });
    current = socket;
    socket.on('connect', () => emit('open', { port: port }));
    socket.on('connect_error', (err) => { emit('refused', { port: port, why: String(err) }); socket.close(); setTimeout(attempt, retry); });
    socket.on('disconnect', (reason) => {
      if (stopping) return;
      emit('close', { port: port, judged: reason === 'ping timeout', why: reason });
      setTimeout(attempt, retry);
    });
  }
  attempt();
  const stop = () => { stopping = true; if (current) current.close(); setTimeout(() => process.exit(0), 50); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[2] === 'server') server();
else if (process.argv[2] === 'client') client();
else { process.stderr.write('usage: node peer.js server|client ...\n'); process.exit(2); }
