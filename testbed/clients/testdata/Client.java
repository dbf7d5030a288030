import java.io.*;
import java.net.*;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.List;
import javax.net.ssl.*;

/** One TLS client per line of stdin ("id host port name"): JSSE with its
 *  defaults, the lab roots as its only trust store, HTTPS endpoint
 *  identification; one line out per scenario. */
public class Client {
  public static void main(String[] args) throws Exception {
    KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
    ks.load(null, null);
    int i = 0;
    try (InputStream in = new FileInputStream(args[0])) {
      for (java.security.cert.Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        ks.setCertificateEntry("lab" + (i++), c);
      }
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(ks);
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(null, tmf.getTrustManagers(), null);
    SSLSocketFactory f = ctx.getSocketFactory();
    BufferedReader r = new BufferedReader(new InputStreamReader(System.in));
    String line;
    while ((line = r.readLine()) != null) {
      String[] p = line.trim().split("\\s+");
      if (p.length < 4) continue;
      String out;
      try (Socket s = new Socket()) {
        int port = Integer.parseInt(p[2]);
        s.connect(new InetSocketAddress(p[1], port), 5000);
        s.setSoTimeout(10000);
        SSLSocket ss = (SSLSocket) f.createSocket(s, p[3], port, true);
        SSLParameters sp = ss.getSSLParameters();
        sp.setEndpointIdentificationAlgorithm("HTTPS");
        sp.setServerNames(List.of(new SNIHostName(p[3])));
        ss.setSSLParameters(sp);
        ss.startHandshake();
        ss.getOutputStream().write("GET / HTTP/1.0\r\n\r\n".getBytes());
        ss.getOutputStream().flush();
        out = ss.getInputStream().read() < 0 ? "FAIL closed without a response" : "OK";
      } catch (Exception e) {
        StringBuilder b = new StringBuilder("FAIL");
        for (Throwable t = e; t != null; t = t.getCause()) b.append(' ').append(t.getClass().getSimpleName()).append(": ").append(t.getMessage()).append(';');
        out = b.toString().replaceAll("\\s+", " ");
      }
      System.out.println(p[0] + " " + out);
      System.out.flush();
    }
  }
}
