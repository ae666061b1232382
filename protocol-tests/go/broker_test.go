// Package clients tests Go's Kafka clients (franz-go, sarama) against the real weir
// binary: WEIR_BIN, or the release build in CARGO_TARGET_DIR (default ../../target).
package clients

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Broker is one weir process on a free port with a temporary data directory.
type Broker struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
}

func weirBinary() string {
	if bin := os.Getenv("WEIR_BIN"); bin != "" {
		return bin
	}
	target := os.Getenv("CARGO_TARGET_DIR")
	if target == "" {
		target = filepath.Join("..", "..", "target")
	}
	return filepath.Join(target, "release", "weir")
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartBroker starts weir with `overrides` (key=value) and stops it when the test ends.
func StartBroker(t *testing.T, overrides ...string) *Broker {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		if b := tryStart(t, overrides); b != nil {
			t.Cleanup(b.stop)
			return b
		}
	}
	t.Fatal("weir did not start")
	return nil
}

func tryStart(t *testing.T, overrides []string) *Broker {
	port := freePort(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"--override", "listeners=PLAINTEXT://" + addr, "--override", "log.dirs=" + dir}
	for _, kv := range overrides {
		args = append(args, "--override", kv)
	}
	cmd := exec.Command(weirBinary(), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", weirBinary(), err)
	}
	ready := make(chan bool, 1)
	go func() {
		// Read the log to the end (an unread pipe would block the broker); report our own
		// "listening" line, or the end of the process.
		scanner := bufio.NewScanner(stderr)
		announced := false
		for scanner.Scan() {
			line := scanner.Text()
			if !announced && strings.Contains(line, "listening") && strings.Contains(line, addr) {
				announced = true
				ready <- true
			}
		}
		if !announced {
			ready <- false
		}
		// A line too long for the scanner ends the loop: keep draining, or the broker
		// would block on a full pipe.
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case ok := <-ready:
		if ok {
			return &Broker{Addr: addr, dir: dir, cmd: cmd}
		}
		_ = cmd.Wait()
		return nil // most likely the port was taken meanwhile
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("weir did not start listening within 20 s")
		return nil
	}
}

func (b *Broker) stop() {
	_ = b.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}

func unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}
