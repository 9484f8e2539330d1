// Start configurable-http-proxy unchanged, and let SIGHUP swap its TLS certificate in place.
//
// configurable-http-proxy reads --ssl-key/--ssl-cert once, when it starts; restarting it to renew a
// certificate would cut every open connection (kernel websockets, downloads). Node's tls.Server can take a
// new secure context at any time, used for new handshakes only, so open connections are never touched.
// Usage: node proxy_tls.js <path of configurable-http-proxy's bin script> [its usual arguments]
"use strict";
const fs = require("fs");
const https = require("https");

const chpBin = process.argv[2];
const args = process.argv.slice(3);
const servers = [];

const createServer = https.createServer;
https.createServer = function (options, ...rest) {
  const server = createServer.call(this, options, ...rest);
  servers.push({ server, options });
  return server;
};

function argValue(name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

// Every cookie that leaves through TLS is marked Secure. The hub marks its own (its public URL is https), but
// user servers set theirs (jupyter-server's _xsrf token) without the hub's cookie options; a cookie without
// Secure would be sent again over plain HTTP to this name. http-proxy copies the backend's headers with
// setHeader, so this is the one place every proxied response passes.
const http = require("http");
const setHeader = http.ServerResponse.prototype.setHeader;
http.ServerResponse.prototype.setHeader = function (name, value) {
  const tls = this.req && this.req.socket && this.req.socket.encrypted;
  if (tls && String(name).toLowerCase() === "set-cookie") {
    const secure = (cookie) => (/;\s*secure\s*(;|$)/i.test(cookie) ? cookie : `${cookie}; Secure`);
    value = Array.isArray(value) ? value.map(secure) : secure(String(value));
  }
  return setHeader.call(this, name, value);
};

process.on("SIGHUP", () => {
  const keyFile = argValue("--ssl-key");
  const certFile = argValue("--ssl-cert");
  try {
    const key = fs.readFileSync(keyFile);
    const cert = fs.readFileSync(certFile);
    for (const entry of servers) {
      // Only the public proxy server carries --ssl-cert; the API server is plain HTTP on loopback.
      if (entry.options && entry.options.cert) {
        entry.options = { ...entry.options, key, cert };
        entry.server.setSecureContext(entry.options);
      }
    }
    console.log(`${new Date().toISOString()} pangeohub: reloaded TLS certificate ${certFile}`);
  } catch (err) {
    // Keep serving the certificate in use: a bad file must not take the site down.
    console.error(`${new Date().toISOString()} pangeohub: could not reload TLS certificate: ${err.message}`);
  }
});

// configurable-http-proxy parses process.argv as if it had been started directly.
process.argv = [process.argv[0], chpBin, ...args];
require(chpBin);
