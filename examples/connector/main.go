// Command connector stands in for a studio's order connector, the endpoint
// Fulfill Orders asks for a player's orders on a platform (see
// docs/senders.md, "Fulfill Orders"). A real connector asks the platform; this
// one answers from what was posted to it:
//
//	POST /events   a store event: one order in its current state (a later
//	               event for the same order replaces it)
//	POST /orders   storegate's signed request: the player's orders on the
//	               platform that changed since the cursor
//
// It verifies storegate's Standard Webhooks signature, as a real one must.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"storegate/adapters/connectors"
	"storegate/mapping"
	"storegate/signing"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9090", "address to serve on")
	secret := flag.String("secret", "whsec_ZGVtby1zdG9yZXMtc2VjcmV0LURPLU5PVC1VU0U=",
		"the Standard Webhooks secret storegate signs with (make run's demo stores secret)")
	flag.Parse()
	verifier, err := signing.NewStandard([]string{*secret}, signing.StandardConfig{})
	if err != nil {
		log.Fatal(err)
	}
	sim := connectors.NewSimulator(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		var ev mapping.StoreEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sim.Put(ev)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := verifier.Verify(r.Header.Get, body); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req struct {
			PlayerID string     `json:"player_id"`
			Platform string     `json:"platform"`
			Since    *time.Time `json:"since"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var since time.Time
		if req.Since != nil {
			since = *req.Since
		}
		orders, err := sim.Orders(r.Context(), req.PlayerID, req.Platform, since)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"orders": orders})
	})
	fmt.Fprintf(os.Stderr, "connector listening on %s\n", *listen)
	log.Fatal(http.ListenAndServe(*listen, mux))
}
