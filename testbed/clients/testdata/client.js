// One TLS client per line of stdin ("id host port name"), Node's tls with
// the lab roots as its only CA; one line out per scenario.
const tls = require('tls'), fs = require('fs');
const ca = fs.readFileSync(process.argv[2]);
const lines = fs.readFileSync(0, 'utf8').split('\n').filter(l => l.trim());
(async () => {
  for (const line of lines) {
    const [id, host, port, name] = line.trim().split(/\s+/);
    const out = await new Promise(resolve => {
      let done = false;
      const sock = tls.connect({ host, port: +port, servername: name, ca, timeout: 10000 }, () => sock.write('GET / HTTP/1.0\r\n\r\n'));
      const fin = s => { if (!done) { done = true; sock.destroy(); resolve(s); } };
      sock.on('data', () => fin('OK'));
      sock.on('error', e => fin('FAIL ' + (e.code || '') + ': ' + e.message));
      sock.on('timeout', () => fin('FAIL timeout'));
      sock.on('close', () => fin('FAIL closed without a response'));
    });
    console.log(id + ' ' + out.replace(/\s+/g, ' '));
  }
})();
