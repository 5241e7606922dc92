'use strict';
// One real, stock Faye 1.4.3 client for stormcheck conform (one process per
// client, so a crash is a kill).
//
//   node client.js --name c0 --url http://127.0.0.1:P/bayeux --channel /room --retry R
//                  [--after-drop same-id|rehandshake]
//
// It subscribes to one channel and logs, one JSON line each on stdout: every
// handshake and connect it sends, every reply (with its advice), a 401, a
// socket drop (transport:down), and every message it receives.
// --after-drop same-id (the default) is the stock client: it retries its
// pending connect on the same client id. rehandshake is Gitter's 2015 client:
// after a drop it drops that client and handshakes anew (new id), after the
// same retry delay.

var faye = require('faye');

function args(argv) {
  var out = {};
  for (var i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}
var opt = args(process.argv);
var retry = parseFloat(opt.retry);
var generation = 0;

function log(ev, fields) {
  process.stdout.write(JSON.stringify(Object.assign({t: Date.now(), ev: ev, client: opt.name}, fields || {})) + '\n');
}

function start() {
  var gen = ++generation;
  var client = new faye.Client(opt.url, {retry: retry});
  client.disable('autodisconnect');
  // The handshake goes over HTTP; connects then over a websocket (one socket per session, as the model's).
  client.disable('callback-polling');
  client.disable('eventsource');

  client.addExtension({
    outgoing: function(message, callback) {
      if (gen === generation && message.channel.indexOf('/meta/') === 0)
        log('send', {channel: message.channel, id: message.clientId || null});
      callback(message);
    },
    incoming: function(message, callback) {
      if (gen !== generation) return callback(message);
      if (message.channel === '/meta/handshake' || message.channel === '/meta/connect' ||
          message.channel === '/meta/subscribe') {
        var unknown = message.successful === false && /^401/.test(message.error || '');
        log(unknown ? '401' : 'reply', {channel: message.channel, id: message.clientId || null,
            successful: message.successful, error: message.error, advice: message.advice});
      }
      callback(message);
    }
  });
  client.on('transport:down', function() {
    if (gen !== generation) return;
    log('down', {id: client._dispatcher.clientId});
    if (opt['after-drop'] === 'rehandshake') {
      // Stop the old client's timers and transports without a disconnect message.
      client._advice.reconnect = 'none';
      client._dispatcher.close();
      generation += 1;
      setTimeout(start, retry * 1000);
    }
  });
  client.on('transport:up', function() { if (gen === generation) log('up', {id: client._dispatcher.clientId}); });
  client.subscribe(opt.channel, function(data) {
    log('message', {id: client._dispatcher.clientId, seq: data.seq, from: data.from});
  });
}

log('ready', {url: opt.url});
start();
function stop() { process.exit(0); }
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
