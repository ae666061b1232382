package dev.weir.clients;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** The real weir binary on a free port with a temporary data directory. */
final class WeirBroker implements AutoCloseable {
    final int port;
    final Path dataDir;
    private final Path logFile;
    private final List<String> command = new ArrayList<>();
    private Process process;

    private WeirBroker(Map<String, String> overrides, int port) throws IOException {
        this.port = port;
        this.dataDir = Files.createTempDirectory("weir-java-");
        this.logFile = Paths.get(dataDir + ".log");
        command.add(binary());
        command.add("--override");
        command.add("listeners=PLAINTEXT://127.0.0.1:" + port);
        command.add("--override");
        command.add("log.dirs=" + dataDir);
        overrides.forEach((k, v) -> {
            command.add("--override");
            command.add(k + "=" + v);
        });
    }

    /** Starts a broker; retries on another port if the free port was taken meanwhile. */
    static WeirBroker start(Map<String, String> overrides) {
        IOException last = null;
        for (int attempt = 0; attempt < 5; attempt++) {
            try {
                WeirBroker broker = new WeirBroker(overrides, freePort());
                if (broker.spawn()) {
                    return broker;
                }
                broker.close();
            } catch (IOException e) {
                last = e;
            }
        }
        throw new IllegalStateException("weir did not start", last);
    }

    static WeirBroker start() {
        return start(Map.of());
    }

    String bootstrap() {
        return "127.0.0.1:" + port;
    }

    String log() {
        try {
            return Files.readString(logFile);
        } catch (IOException e) {
            return "";
        }
    }

    /** Ends the process at once, as a crash would. */
    void kill9() {
        if (process != null && process.isAlive()) {
            process.destroyForcibly();
            waitFor();
        }
    }

    /** Starts the broker again on the same port and data directory. */
    void restart() throws IOException {
        kill9();
        if (!spawn()) {
            throw new IllegalStateException("weir did not restart:\n" + log());
        }
    }

    @Override
    public void close() {
        if (process != null && process.isAlive()) {
            process.destroy();
            waitFor();
        }
        deleteTree(dataDir);
        // scripts/kafka-as-weir (WEIR_BIN) keeps Kafka's own files beside the data directory.
        deleteTree(Paths.get(dataDir + ".kafka"));
        try {
            Files.deleteIfExists(logFile);
        } catch (IOException ignored) {
            // Best effort: a leftover log in the temp folder harms nothing.
        }
    }

    private boolean spawn() throws IOException {
        ProcessBuilder pb = new ProcessBuilder(command)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
        pb.environment().putIfAbsent("NO_COLOR", "1");
        long before = Files.exists(logFile) ? Files.size(logFile) : 0;
        process = pb.start();
        String ours = "127.0.0.1:" + port;
        Instant deadline = Instant.now().plus(Duration.ofSeconds(20));
        while (Instant.now().isBefore(deadline)) {
            String text = log().substring((int) Math.min(before, log().length()));
            if (text.lines().anyMatch(l -> l.contains("listening") && l.contains(ours))) {
                return true;
            }
            if (!process.isAlive()) {
                return false; // port taken, most likely: the caller tries another
            }
            sleep(20);
        }
        process.destroyForcibly();
        waitFor();
        throw new IllegalStateException("weir did not start listening:\n" + log());
    }

    private void waitFor() {
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static String binary() {
        String explicit = System.getenv("WEIR_BIN");
        if (explicit != null && !explicit.isEmpty()) {
            return explicit;
        }
        String target = System.getenv("CARGO_TARGET_DIR");
        Path root = Paths.get(System.getProperty("user.dir")).resolve("../..").normalize();
        Path dir = target != null && !target.isEmpty() ? Paths.get(target) : root.resolve("target");
        return dir.resolve("release/weir").toString();
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static void deleteTree(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
