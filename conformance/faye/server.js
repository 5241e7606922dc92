'use strict';
// One real Faye server (NodeAdapter) on a Redis engine, for stormcheck conform.
//
//   node server.js --name s0 --port P --control C --redis R --engine published|destroying
//                  --timeout T --interval I --gc G
//
// Every line on stdout is one JSON event {"t": ms since epoch, "ev": ...}.
// The control endpoint (HTTP on 127.0.0.1:C) is how the harness acts on the
// process: POST /advice?timeout=&interval= (the adjuster: sets the one T and
// I the process uses for advice, holds and every reaper), POST /gc (a sweep
// now), POST /publish?channel=&seq= (a publish sent from this server),
// GET /sessions (every session's score in Redis, read at once).

var http = require('http'), url = require('url'), faye = require('faye'), engines = require('./engines');

function args(argv) {
  var out = {};
  for (var i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}
var opt = args(process.argv);

function log(ev, fields) {
  process.stdout.write(JSON.stringify(Object.assign({t: Date.now(), ev: ev, server: opt.name}, fields || {})) + '\n');
}

var Engine = engines[opt.engine](log);
var bayeux = new faye.NodeAdapter({
  mount: '/bayeux',
  timeout: parseFloat(opt.timeout),
  engine: {type: Engine, host: '127.0.0.1', port: parseInt(opt.redis, 10), gc: parseFloat(opt.gc)}
});
var proxy = bayeux._server._engine;   // Engine.Proxy: the one T and I of this process

bayeux._server._engine.interval = parseFloat(opt.interval);

bayeux.addExtension({
  incoming: function(message, callback) {
    if (message.channel === '/meta/connect') log('connect', {client: message.clientId, hold_s: proxy.timeout});
    if (message.channel === '/meta/handshake') log('handshake-in', {});
    callback(message);
  },
  outgoing: function(message, callback) {
    if (message.channel === '/meta/connect' || message.channel === '/meta/handshake') {
      log(message.channel.slice(6) + '-reply', {client: message.clientId, successful: message.successful,
          error: message.error, advice: message.advice});
    }
    callback(message);
  }
});
bayeux.on('handshake', function(clientId) { log('session', {client: clientId}); });
bayeux.on('disconnect', function(clientId) { log('disconnect', {client: clientId}); });

function reply(res, code, body) {
  res.writeHead(code, {'Content-Type': 'application/json'});
  res.end(JSON.stringify(body));
}

var control = http.createServer(function(req, res) {
  var u = url.parse(req.url, true), q = u.query;
  if (u.pathname === '/advice') {
    proxy.timeout = parseFloat(q.timeout);
    proxy.interval = parseFloat(q.interval);
    log('advice', {timeout: proxy.timeout, interval: proxy.interval});
    return reply(res, 200, {timeout: proxy.timeout, interval: proxy.interval});
  }
  if (u.pathname === '/gc') {
    proxy._engine.gc();
    return reply(res, 200, {});
  }
  if (u.pathname === '/publish') {
    var seq = parseInt(q.seq, 10);
    log('publish', {channel: q.channel, seq: seq});
    bayeux.getClient().publish(q.channel, {seq: seq, from: opt.name});
    return reply(res, 200, {seq: seq});
  }
  if (u.pathname === '/sessions') {
    return proxy._engine._redis.zrange(proxy._engine._ns + '/clients', 0, -1, 'WITHSCORES', function(e, flat) {
      var scores = {};
      for (var i = 0; i < (flat || []).length; i += 2) scores[flat[i]] = parseInt(flat[i + 1], 10);
      reply(res, 200, {now: Date.now(), scores: scores});
    });
  }
  reply(res, 404, {error: 'unknown path ' + u.pathname});
});

var web = http.createServer();
bayeux.attach(web);
web.listen(parseInt(opt.port, 10), '127.0.0.1', function() {
  control.listen(parseInt(opt.control, 10), '127.0.0.1', function() {
    log('ready', {port: parseInt(opt.port, 10), control: parseInt(opt.control, 10), engine: opt.engine,
                  timeout: proxy.timeout, interval: proxy.interval});
  });
});
function stop() { process.exit(0); }
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
