import io.socket.client.Ack;
import io.socket.client.IO;
import io.socket.client.Socket;
import io.socket.engineio.client.transports.WebSocket;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

/**
 * roomcast interop client on io.socket:socket.io-client (what Android apps use), driven by
 * test/integration/interop.test.ts.
 *
 * usage: InteropClient <url A> <url B> <token> <channel> <history> <expected count>
 */
public final class InteropClient {
  private static long offset = 0;
  private static String epoch = null;
  private static final TreeSet<Long> received = new TreeSet<>();
  private static final CountDownLatch done = new CountDownLatch(1);
  private static volatile CountDownLatch lost = new CountDownLatch(1);
  private static int expected;
  private static String channel;

  private static void say(Object... parts) {
    StringBuilder line = new StringBuilder();
    for (Object part : parts) line.append(line.length() == 0 ? "" : " ").append(part);
    System.out.println(line);
    System.out.flush();
  }

  /** Runs on the client's event thread, in order, for answers and live events alike. */
  private static synchronized void deliver(JSONObject event) throws JSONException {
    long n = event.getLong("offset");
    if (n <= offset) return; // already have it
    offset = n;
    epoch = event.getString("epoch");
    received.add(n);
    say("GOT", n, event.getString("id"));
    if (received.size() >= expected) done.countDown();
  }

  private static Socket connect(String url, String token, JSONObject request, String label) throws Exception {
    // example:connect
    IO.Options options = IO.Options.builder()
        .setAuth(Map.of("token", token))
        .setTransports(new String[] {WebSocket.NAME})
        .setReconnection(false)
        .build();
    Socket socket = IO.socket(url, options);
    CountDownLatch answered = new CountDownLatch(1);
    socket.on("event", args -> {
      JSONObject event = (JSONObject) args[0];
      try {
        if (channel.equals(event.optString("channel"))) deliver(event);
      } catch (JSONException e) {
        say("ERROR", e);
        System.exit(2);
      }
    });
    socket.on(Socket.EVENT_DISCONNECT, args -> lost.countDown());
    socket.on(Socket.EVENT_CONNECT, args -> socket.emit("subscribe", new Object[] {request}, (Ack) answerArgs -> {
      try {
        onAnswer((JSONObject) answerArgs[0], label);
      } catch (JSONException e) {
        say("ERROR", e);
        System.exit(2);
      }
      answered.countDown();
    }));
    socket.connect();
    // end example
    if (!answered.await(10, TimeUnit.SECONDS)) {
      say("ERROR", "no answer to subscribe");
      System.exit(2);
    }
    return socket;
  }

  private static void onAnswer(JSONObject answer, String label) throws JSONException {
    if (!answer.optBoolean("ok")) {
      say("ERROR", answer);
      System.exit(2);
    }
    synchronized (InteropClient.class) {
      if (epoch == null) epoch = answer.getString("epoch");
    }
    JSONArray events = answer.getJSONArray("events");
    for (int i = 0; i < events.length(); i++) deliver(events.getJSONObject(i));
    synchronized (InteropClient.class) {
      offset = Math.max(offset, answer.getLong("offset"));
    }
    if (label.equals("READY")) say("READY", answer.getLong("offset"), answer.getString("epoch"));
    else say("RECOVERED", answer.getBoolean("recovered"), events.length());
  }

  public static void main(String[] argv) throws Exception {
    String urlA = argv[0], urlB = argv[1], token = argv[2];
    channel = argv[3];
    int history = Integer.parseInt(argv[4]);
    expected = Integer.parseInt(argv[5]);
    Socket socket = connect(urlA, token, new JSONObject().put("channel", channel).put("history", history), "READY");
    while (done.getCount() > 0 && !lost.await(50, TimeUnit.MILLISECONDS)) {
      // wait for the test to kill replica A, or for every event
    }
    if (done.getCount() > 0) {
      say("DISCONNECTED");
      socket.close();
      JSONObject since;
      synchronized (InteropClient.class) {
        since = new JSONObject().put("offset", offset).put("epoch", epoch);
      }
      lost = new CountDownLatch(1);
      socket = connect(urlB, token, new JSONObject().put("channel", channel).put("since", since), "RECOVERED");
    }
    if (!done.await(30, TimeUnit.SECONDS)) {
      say("ERROR", "timed out with", received.size(), "events");
      System.exit(3);
    }
    say("DONE");
    socket.close();
    System.exit(0);
  }
}
