'use strict';
// The two Redis engines a conformance run can put under a real Faye server.
//
// "published" is faye-redis 0.2.0 as npm ships it; its publish path only
// deletes the message queue of a subscriber the publishing server's 1.6 x T
// calls expired (the session survives). "destroying" extends that class with
// the rule of Gitter's fork (faye-redis 0.4.4, docs/protocol.md): the publish
// path destroys the expired subscribers first, then publishes to the rest.
// Both only add logging around the published code; none of it is copied.

var FayeRedis = require('faye-redis');

function ageOf(engine, clientId, callback) {
  engine._redis.zscore(engine._ns + '/clients', clientId, function(error, score) {
    callback(score === null ? null : Date.now() - parseInt(score, 10));
  });
}

// Log every destruction with the path that asked for it and the session's age.
function withLogging(Base, log) {
  var Engine = function(server, options) { Base.call(this, server, options); };
  Engine.create = function(server, options) { return new this(server, options); };
  Engine.prototype = Object.create(Base.prototype);
  Engine.prototype.constructor = Engine;

  Engine.prototype.gc = function() {
    log('gc', {timeout: this._server.timeout});
    return Base.prototype.gc.call(this);
  };

  Engine.prototype.destroyClient = function(clientId, callback, context) {
    var self = this, path = this._reapPath || 'gc', timeout = this._server.timeout;
    ageOf(this, clientId, function(age) {
      log('destroy', {client: clientId, path: path, age_ms: age, timeout: timeout});
      Base.prototype.destroyClient.call(self, clientId, callback, context);
    });
  };

  // The published publish path: its expiry check deletes the queue. Logged by
  // watching the same check the engine makes, after the engine made it.
  Engine.prototype.clientExists = function(clientId, callback, context) {
    var self = this, timeout = this._server.timeout;
    Base.prototype.clientExists.call(this, clientId, function(exists) {
      if (!exists) ageOf(self, clientId, function(age) {
        log('expired', {client: clientId, age_ms: age, timeout: timeout});
      });
      callback.call(context, exists);
    });
  };
  return Engine;
}

function published(log) { return withLogging(FayeRedis, log); }

function destroying(log) {
  var Base = withLogging(FayeRedis, log);
  var Engine = function(server, options) { Base.call(this, server, options); };
  Engine.create = Base.create;
  Engine.prototype = Object.create(Base.prototype);
  Engine.prototype.constructor = Engine;

  // Gitter's rule: every subscriber the publishing server calls expired is
  // destroyed (session, subscriptions, queue) before the message is queued.
  // destroyClient is otherwise called by gc only, hence its default path.
  Engine.prototype.publish = function(message, channels) {
    var self = this, keys = channels.map(function(c) { return self._ns + '/channels' + c; });
    this._redis.sunion(keys, function(error, clients) {
      var pending = clients.length;
      var done = function() { if (--pending <= 0) Base.prototype.publish.call(self, message, channels); };
      if (pending === 0) return Base.prototype.publish.call(self, message, channels);
      clients.forEach(function(clientId) {
        Base.prototype.clientExists.call(self, clientId, function(exists) {
          if (exists) return done();
          self._reapPath = 'publish';
          self.destroyClient(clientId, function() { self._reapPath = null; done(); });
        });
      });
    });
  };
  return Engine;
}

module.exports = {published: published, destroying: destroying};
