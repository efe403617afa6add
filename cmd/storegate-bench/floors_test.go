package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"storegate"
	"storegate/signing"
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

// closeAndOpen closes l, so every write it took is on disk, and opens its
// file to read what it holds.
func closeAndOpen(t *testing.T, l *appendLog, path string) *sql.DB {
	t.Helper()
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
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
	db := closeAndOpen(t, l, path)
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

func TestAcceptFloorStoresAVerifiedOrderWithItsGrant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "floor.db")
	l, err := openSQLiteLog(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "floor-accept-secret"
	app, err := acceptApp(l, secret, nil) // app.Test's caller address is not loopback
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"notification_type":"order_paid","order":{"id":7},"user":{"external_id":"p7"},"items":[{"sku":"crystals_100","quantity":1}]}`)
	post := func(b []byte, signature string) (int, string) {
		req := httptest.NewRequest("POST", "/webhooks/xsolla/bench", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", signature)
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	for _, tc := range []struct {
		name      string
		body      []byte
		signature string
		status    int
		code      string
	}{
		{"signed", body, signing.XsollaSignature(body, secret), 204, ""},
		{"the same order again", body, signing.XsollaSignature(body, secret), 204, ""},
		{"tampered", bytes.Replace(body, []byte(`"p7"`), []byte(`"p8"`), 1), signing.XsollaSignature(body, secret), 400, "INVALID_SIGNATURE"},
		{"unknown sku", []byte(`{"notification_type":"order_paid","order":{"id":8},"user":{"external_id":"p7"},"items":[{"sku":"nope","quantity":1}]}`), "", 400, "INVALID_PARAMETER"},
	} {
		b := tc.body
		sig := tc.signature
		if sig == "" {
			sig = signing.XsollaSignature(b, secret)
		}
		status, out := post(b, sig)
		if status != tc.status || !strings.Contains(out, tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, out, tc.status, tc.code)
		}
	}
	db := closeAndOpen(t, l, path)
	var stored, commands []byte
	if err := db.QueryRow("SELECT body, commands FROM events").Scan(&stored, &commands); err != nil {
		t.Fatal(err)
	}
	var n int
	db.QueryRow("SELECT count(*) FROM events").Scan(&n)
	if n != 1 || !bytes.Equal(stored, body) {
		t.Errorf("%d rows, body %s; want the one verified order, as sent", n, stored)
	}
	var cmds []storegate.Command
	if err := json.Unmarshal(commands, &cmds); err != nil || len(cmds) != 1 || cmds[0].Kind != storegate.KindFulfill ||
		cmds[0].PlayerID != "p7" || len(cmds[0].Lines) != 1 {
		t.Errorf("commands %s (%v): want the order's one grant to p7", commands, err)
	}
}
