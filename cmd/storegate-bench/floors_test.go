package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// appendAll sends n distinct bench bodies to l from n goroutines at once.
func appendAll(t *testing.T, l *appendLog, n int) [][]byte {
	t.Helper()
	bodies := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		bodies[i] = fmt.Appendf(nil, `{"notification_type":"order_paid","order":{"id":%d},"user":{"external_id":"p1"}}`, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.append(bodies[i]); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	return bodies
}

func TestFileFloorKeepsEveryBody(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := openAppendLog(path)
	if err != nil {
		t.Fatal(err)
	}
	bodies := appendAll(t, l, 50)
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if !bytes.Contains(data, b) {
			t.Errorf("%s is not in the log", b)
		}
	}
}

func TestSQLiteFloorStoresEachOrderOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "floor.db")
	l, err := openSQLiteLog(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	bodies := appendAll(t, l, 50)
	if err := l.append(bodies[7]); err != nil { // a duplicate is answered, not stored again
		t.Fatal(err)
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, keys int
	if err := db.QueryRow("SELECT count(*), count(DISTINCT key) FROM events").Scan(&rows, &keys); err != nil {
		t.Fatal(err)
	}
	if rows != 50 || keys != 50 {
		t.Errorf("%d rows with %d keys, want 50 orders once each", rows, keys)
	}
	var body []byte
	if err := db.QueryRow("SELECT body FROM events WHERE key = '7'").Scan(&body); err != nil || !bytes.Equal(body, bodies[7]) {
		t.Errorf("order 7: %s, %v; want %s", body, err, bodies[7])
	}
}
