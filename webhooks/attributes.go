package webhooks

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Attributes describes a player to Xsolla (user_validation's optional
// user_attributes), for one target. Values are JSON as the target gave
// them; the server keeps those Xsolla's schema accepts.
type Attributes interface {
	UserAttributes(ctx context.Context, playerID string) (map[string]json.RawMessage, error)
}

// maxAttributes is the most user_attributes Xsolla takes in one answer.
const maxAttributes = 100

// userAttributes asks the source's target to describe the player and keeps
// the attributes Xsolla's schema accepts, in name order. Attributes are an
// extra: a target that cannot answer, or an attribute that breaks the
// schema, never costs the player the answer that lets them pay.
func (h *handlers) userAttributes(ctx context.Context, src *XsollaSource, playerID string) map[string]json.RawMessage {
	a := h.deps.Attributes[src.Target]
	if a == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.UserDeadline)
	defer cancel()
	attrs, err := a.UserAttributes(ctx, playerID)
	if err != nil {
		h.log.Warn("user attributes unavailable; answering without them", "source", src.Name, "err", err)
		return nil
	}
	kept := map[string]json.RawMessage{}
	var dropped []string
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		if len(kept) == maxAttributes || !h.attributeFits(name, attrs[name]) {
			dropped = append(dropped, name)
			continue
		}
		kept[name] = attrs[name]
	}
	h.attrs.dropped(h, src.Name, dropped)
	return kept
}

// attributeFits checks one attribute against Xsolla's user_attributes
// schema, the one contract for every target.
func (h *handlers) attributeFits(name string, v json.RawMessage) bool {
	doc, err := json.Marshal(map[string]map[string]json.RawMessage{"user_attributes": {name: v}})
	return err == nil && h.srv.Schemas().Validate("answers/xsolla_user_attributes", doc) == nil
}

// attributeLog logs each dropped attribute once per source and name, so a
// target that keeps sending a bad one does not fill the log; the metric
// counts every drop.
type attributeLog struct {
	seen sync.Map // source + "\x00" + name
	n    atomic.Int64
}

// maxLoggedAttributes bounds the names remembered: a target's names are
// not ours to trust.
const maxLoggedAttributes = 1000

func (l *attributeLog) dropped(h *handlers, source string, names []string) {
	if len(names) == 0 {
		return
	}
	if h.metrics != nil {
		h.metrics.AttributesDropped(source, len(names))
	}
	for _, name := range names {
		if l.n.Load() >= maxLoggedAttributes {
			return
		}
		if _, seen := l.seen.LoadOrStore(source+"\x00"+name, true); !seen {
			l.n.Add(1)
			h.log.Warn("user attribute dropped: Xsolla's user_attributes schema refuses it (integer, 1-255 characters, or up to 1000 strings; name of word characters, - or .)",
				"source", source, "attribute", clipText(name, 64))
		}
	}
}
