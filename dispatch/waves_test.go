package dispatch

import (
	"fmt"
	"reflect"
	"testing"

	"storegate"
	"storegate/store"
)

// Waves keep each player's commands in claim order across waves, never put
// a player in two chunks of one wave, and bound a chunk's size.
func TestWaves(t *testing.T) {
	claim := func(ids ...string) []store.Claimed {
		var out []store.Claimed
		for _, id := range ids { // "p1:a" is command a of player p1
			out = append(out, store.Claimed{Command: storegate.Command{ID: id, PlayerID: id[:2]}})
		}
		return out
	}
	tests := []struct {
		name string
		in   []store.Claimed
		size int
		want [][][]string
	}{
		{"none", nil, 4, nil},
		{"one player, more than a chunk", claim("p1:a", "p1:b", "p1:c", "p1:d", "p1:e", "p1:f"), 4,
			[][][]string{{{"p1:a", "p1:b", "p1:c", "p1:d"}}, {{"p1:e", "p1:f"}}}},
		{"players packed, none split within a wave", claim("p1:a", "p2:a", "p1:b", "p3:a", "p4:a", "p5:a", "p2:b"), 2,
			[][][]string{{{"p1:a", "p1:b"}, {"p2:a", "p2:b"}, {"p3:a", "p4:a"}, {"p5:a"}}}},
		{"a later wave for a player's third command", claim("p1:a", "p2:a", "p1:b", "p1:c"), 2,
			[][][]string{{{"p1:a", "p1:b"}, {"p2:a"}}, {{"p1:c"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got [][][]string
			for _, wave := range waves(tc.in, tc.size) {
				var w [][]string
				for _, chunk := range wave {
					var c []string
					for _, cl := range chunk {
						c = append(c, cl.Command.ID)
					}
					if len(c) >= 2*tc.size {
						t.Errorf("chunk of %d commands, want under %d", len(c), 2*tc.size)
					}
					w = append(w, c)
				}
				got = append(got, w)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("waves = %v\nwant    %v", fmt.Sprint(got), fmt.Sprint(tc.want))
			}
		})
	}
}
