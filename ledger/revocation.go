package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"storegate"
	"storegate/store/engine"
)

// Revocation strategies (storegate's revocation actions). AGS's names are
// in the comments.
const (
	// CurrencyAllowNegative debits the whole amount, even below zero
	// (ALWAYS_REVOKE). The default: a claw-back always happens, and a
	// negative total blocks spending until it is positive again.
	CurrencyAllowNegative = storegate.RevokeAllowNegative
	// CurrencyFailIfNegative fails the entry, taking nothing, when the
	// balance of the platform the currency was bought on would drop below 0
	// (REVOKE_OR_REPORT).
	CurrencyFailIfNegative = storegate.RevokeFailIfNegative
	// DurableRevoke revokes the entitlement (REVOKE_OR_REPORT). The default.
	DurableRevoke = storegate.RevokeDurable
	// ConsumableRevokeUnused revokes a consumable only if it has enough
	// uses left, an unopened box only (REVOKE_OR_REPORT). The default.
	ConsumableRevokeUnused = storegate.RevokeUnused
	// StrategyCustom asks the external revocation service (CUSTOM).
	StrategyCustom = storegate.RevokeCustom
	// StrategyNone takes nothing back: the entry is skipped (AGS's
	// revocation config with enabled false).
	StrategyNone = storegate.RevokeNone
)

// Rules are the revocation rules: one strategy per kind of thing revoked,
// and the overrides of the orders of some sources. An entry's strategy is
// its order's (Sources), else its item's (the catalog's, carried by the
// grant), else its kind's.
type Rules struct {
	// Currency is allow_negative (default), fail_if_negative, custom or
	// none.
	Currency string
	// Durable (durable and media items) is revoke (default), custom or
	// none.
	Durable string
	// Consumable (consumables, loot and option boxes) is revoke_unused
	// (default), custom or none.
	Consumable string
	// Sources override the strategies for the orders of a source, by the
	// source's configured name. Optional.
	Sources map[string]SourceRules
	// Custom is the revocation service the custom strategy asks. Required
	// when a strategy is custom.
	Custom CustomRevoker
	// Namespace is sent to the custom service and named in every
	// revocation record. Default "storegate".
	Namespace string
}

// SourceRules are one source's overrides, per kind; an empty field leaves
// the kind to the item's action and the target's rule.
type SourceRules struct {
	Currency, Durable, Consumable string
}

func (r SourceRules) of(kind string) string {
	switch kind {
	case storegate.RevocationCurrency:
		return r.Currency
	case storegate.RevocationConsumable:
		return r.Consumable
	}
	return r.Durable
}

// DefaultRules are the rules a zero Rules stands for, for whoever shows them
// (the YAML config's documentation).
func DefaultRules() Rules {
	r, _ := Rules{}.withDefaults() // a zero Rules has no custom strategy, so no error
	return r
}

func (r Rules) withDefaults() (Rules, error) {
	if r.Currency == "" {
		r.Currency = CurrencyAllowNegative
	}
	if r.Durable == "" {
		r.Durable = DurableRevoke
	}
	if r.Consumable == "" {
		r.Consumable = ConsumableRevokeUnused
	}
	if r.Namespace == "" {
		r.Namespace = "storegate"
	}
	var bad []string
	check := func(path, kind, strategy string, optional bool) {
		actions := storegate.RevocationActions(kind)
		if (optional && strategy == "") || slices.Contains(actions, strategy) {
			return
		}
		bad = append(bad, fmt.Sprintf("%s: %q is not %s", path, strategy, strings.Join(actions, ", ")))
	}
	check("revocation.currency", storegate.RevocationCurrency, r.Currency, false)
	check("revocation.durable", storegate.RevocationDurable, r.Durable, false)
	check("revocation.consumable", storegate.RevocationConsumable, r.Consumable, false)
	names := make([]string, 0, len(r.Sources))
	for name := range r.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		o := r.Sources[name]
		check("sources."+name+".revocation.currency", storegate.RevocationCurrency, o.Currency, true)
		check("sources."+name+".revocation.durable", storegate.RevocationDurable, o.Durable, true)
		check("sources."+name+".revocation.consumable", storegate.RevocationConsumable, o.Consumable, true)
	}
	if r.namesCustom() && r.Custom == nil {
		bad = append(bad, "revocation.custom: a custom strategy needs a custom revocation service")
	}
	if len(bad) > 0 {
		return r, errors.New(strings.Join(bad, "; "))
	}
	return r, nil
}

// namesCustom reports whether a kind's rule or a source's names custom.
func (r Rules) namesCustom() bool {
	all := []string{r.Currency, r.Durable, r.Consumable}
	for _, o := range r.Sources {
		all = append(all, o.Currency, o.Durable, o.Consumable)
	}
	return slices.Contains(all, StrategyCustom)
}

// anyCustom reports whether a revoke may have to ask the custom service: a
// rule names it, or a service is configured for the items whose catalog
// entry names it.
func (r Rules) anyCustom() bool {
	return r.Custom != nil || r.namesCustom()
}

// grantKind is the kind whose rule applies to a grant.
func grantKind(g storegate.Grant) string {
	if g.Currency != "" {
		return storegate.RevocationCurrency
	}
	return storegate.RevocationKind(g.Type)
}

// strategy is the rule for one grant of an order from source: the source's
// override, else the item's action, else the kind's rule.
func (r Rules) strategy(source string, g storegate.Grant) string {
	kind := grantKind(g)
	if s := r.Sources[source].of(kind); s != "" {
		return s
	}
	if g.Revocation != "" {
		return g.Revocation
	}
	return SourceRules{Currency: r.Currency, Durable: r.Durable, Consumable: r.Consumable}.of(kind)
}

// Revocation is one revoke's result as AGS shapes it (Revoke Fulfillment's
// RevokeFulfillmentV2Result, with the source and status of AGS's revocation
// history): per request the namespace, the items, the state and the success
// and failed lists, the item revocations and the summaries of the
// entitlement and credit revocations; per entry the strategy, whether it was
// skipped, and why. Beside AGS's fields, storegate's own: the sender, its
// order reference, the platform and the reason.
type Revocation struct {
	// ID is the revoke's transaction id.
	ID string `json:"id"`
	// Namespace is the ledger's (revocation.custom.namespace).
	Namespace string `json:"namespace"`
	PlayerID  string `json:"player_id"`
	// TransactionID is the fulfillment revoked, or the revoke's own id when
	// it names none (a refund of lines).
	TransactionID string `json:"transaction_id"`
	// Source is ORDER (Xsolla), IAP (a third-party store), DLC (a store
	// purchase of durable content only) or OTHER.
	Source string `json:"source"`
	// Status is SUCCESS when no entry failed, FAIL otherwise.
	Status string `json:"status"`
	// State is REVOKED, PARTIALLY_REVOKED (some entries failed) or
	// REVOKE_FAILED (every entry failed).
	State string `json:"state"`
	// Reason is why the revoke happened (refund, chargeback, ...).
	Reason   string `json:"reason"`
	Sender   string `json:"sender,omitempty"`
	OrderRef string `json:"order_ref,omitempty"`
	Platform string `json:"platform"`
	// Items are the lines the revoke took back, as AGS lists a
	// fulfillment's items.
	Items           []RevokedItem    `json:"items"`
	ItemRevocations []ItemRevocation `json:"item_revocations"`
	// EntitlementRevocations and CreditRevocations sum up every item's
	// (bundles' contents included), as AGS's top-level lists do.
	EntitlementRevocations []EntitlementRevocation `json:"entitlement_revocations"`
	CreditRevocations      []CreditRevocation      `json:"credit_revocations"`
	StateInfo              StateInfo               `json:"state_info"`
	CreatedAt              time.Time               `json:"created_at"`
}

// RevokedItem is one line a revoke took back (AGS's FulfillmentItem).
type RevokedItem struct {
	ItemID   string             `json:"item_id"`
	SKU      string             `json:"sku"`
	ItemType storegate.ItemType `json:"item_type"`
	Quantity int64              `json:"quantity"`
}

// summaries fills the lists derived from the item revocations: records
// written before they were kept get them when read.
func (r *Revocation) summaries() {
	r.Items = make([]RevokedItem, 0, len(r.ItemRevocations))
	r.EntitlementRevocations, r.CreditRevocations = []EntitlementRevocation{}, []CreditRevocation{}
	var walk func(items []ItemRevocation)
	walk = func(items []ItemRevocation) {
		for _, ir := range items {
			for _, e := range ir.EntitlementRevocations {
				e.ItemSKU, e.Strategy = ir.SKU, ir.Strategy
				r.EntitlementRevocations = append(r.EntitlementRevocations, e)
			}
			for _, cr := range ir.CreditRevocations {
				cr.Strategy = ir.Strategy
				r.CreditRevocations = append(r.CreditRevocations, cr)
			}
			walk(ir.ItemRevocations)
		}
	}
	for _, ir := range r.ItemRevocations {
		r.Items = append(r.Items, RevokedItem{ItemID: ir.ItemID, SKU: ir.SKU, ItemType: ir.ItemType, Quantity: ir.Quantity})
	}
	walk(r.ItemRevocations)
}

// ItemRevocation is one revoked line: an item, a currency amount, or a
// bundle with its contents in ItemRevocations.
type ItemRevocation struct {
	ItemID   string             `json:"item_id"`
	SKU      string             `json:"sku"`
	ItemType storegate.ItemType `json:"item_type"`
	Quantity int64              `json:"quantity"`
	Strategy string             `json:"strategy,omitempty"`
	// Skipped marks an entry with nothing (left) to take: already taken by
	// an earlier revoke, or handled by the custom service itself.
	Skipped                bool                    `json:"skipped"`
	Status                 string                  `json:"status"`
	Reason                 string                  `json:"reason,omitempty"`
	CustomRevocation       map[string]string       `json:"custom_revocation,omitempty"`
	CreditRevocations      []CreditRevocation      `json:"credit_revocations,omitempty"`
	EntitlementRevocations []EntitlementRevocation `json:"entitlement_revocations,omitempty"`
	ItemRevocations        []ItemRevocation        `json:"item_revocations,omitempty"`
}

// CreditRevocation is currency taken back from one platform balance.
type CreditRevocation struct {
	Currency     string             `json:"currency"`
	Platform     storegate.Platform `json:"platform"`
	Amount       int64              `json:"amount"`
	BalanceAfter int64              `json:"balance_after"`
	EntryID      int64              `json:"entry_id"`
	// Strategy is set in the record's summary (AGS's revocationStrategy).
	Strategy string `json:"revocation_strategy,omitempty"`
}

// EntitlementRevocation is one entitlement revoked, or uses taken from it.
type EntitlementRevocation struct {
	EntitlementID string `json:"entitlement_id"`
	ItemID        string `json:"item_id"`
	Quantity      int64  `json:"quantity"`
	UseCountAfter int64  `json:"use_count_after"`
	// Status is the entitlement's after the revoke: active (uses left) or
	// revoked.
	Status string `json:"status"`
	// ItemSKU and Strategy are set in the record's summary (AGS's itemSku
	// and revocationStrategy).
	ItemSKU  string `json:"item_sku,omitempty"`
	Strategy string `json:"revocation_strategy,omitempty"`
}

// StateInfo lists what succeeded and what failed, bundles with their
// children, as AGS's stateInfo does.
type StateInfo struct {
	SuccessList []StateEntry `json:"success_list"`
	FailedList  []StateEntry `json:"failed_list"`
}

// StateEntry is one line of StateInfo.
type StateEntry struct {
	ItemID   string       `json:"item_id"`
	SKU      string       `json:"sku"`
	Quantity int64        `json:"quantity"`
	Error    string       `json:"error,omitempty"`
	Items    []StateEntry `json:"items,omitempty"`
}

// Revocation states.
const (
	StateRevoked          = "REVOKED"
	StatePartiallyRevoked = "PARTIALLY_REVOKED"
	StateRevokeFailed     = "REVOKE_FAILED"
)

// planLine is one line a revoke takes back, with its grants.
type planLine struct {
	sku      string
	typ      storegate.ItemType
	quantity int64
	bundle   bool
	grants   []planGrant
}

type planGrant struct {
	// index is "line/grant" in the revoke (lines) or the fulfillment (full).
	index    string
	g        storegate.Grant
	sku      string
	platform storegate.Platform
	// Full revokes only: the wallet entry the grant made, and the
	// entitlement it created.
	entry         *int64
	entitlementID string
}

// querier is what planning reads through: the read pool before the write,
// the write's transaction inside it.
type querier interface {
	Query(ctx context.Context, query string, args ...any) (*engine.Rows, error)
}

// plan lists what a revoke takes back: the lines it names, or everything
// the fulfillment it reverses granted. It is ErrNotGranted when that
// fulfillment has not been applied.
func plan(ctx context.Context, q querier, c storegate.Command) ([]planLine, error) {
	var request string
	if c.Reverses != "" {
		found, err := one(ctx, q, `SELECT request FROM ledger_transactions WHERE transaction_id = ? AND player_id = ? AND kind = 'fulfill'`,
			[]any{c.Reverses, c.PlayerID}, &request)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("%w: %s", ErrNotGranted, c.Reverses)
		}
	}
	if len(c.Lines) > 0 {
		out := make([]planLine, 0, len(c.Lines))
		for li, line := range c.Lines {
			pl := planLine{sku: line.SKU, typ: line.Type, quantity: line.Quantity, bundle: line.Bundle}
			for gi, g := range line.Grants {
				pl.grants = append(pl.grants, planGrant{index: fmt.Sprintf("%d/%d", li, gi), g: g, sku: grantSKU(line, g), platform: platformOf(c)})
			}
			out = append(out, pl)
		}
		return out, nil
	}
	entries, err := grantEntries(ctx, q, c.Reverses, c.PlayerID)
	if err != nil {
		return nil, err
	}
	if request == "" {
		return legacyPlan(ctx, q, c, entries)
	}
	var f fulfillment
	if err := json.Unmarshal([]byte(request), &f); err != nil {
		return nil, fmt.Errorf("fulfillment %s: %w", c.Reverses, err)
	}
	out := make([]planLine, 0, len(f.Lines))
	for li, line := range f.Lines {
		pl := planLine{sku: line.SKU, typ: line.Type, quantity: line.Quantity, bundle: line.Bundle}
		for gi, g := range line.Grants {
			key := grantKey(c.Reverses, li, gi)
			pg := planGrant{index: fmt.Sprintf("%d/%d", li, gi), g: g, sku: grantSKU(line, g), platform: f.Platform}
			if g.Currency != "" {
				if e, ok := entries[key]; ok {
					pg.entry, pg.platform, pg.g.Amount = &e.id, e.platform, e.amount
				}
			} else if g.Type != storegate.ItemGameKey {
				pg.entitlementID = key
			}
			// A game_key grant made one entitlement per key: they are found
			// by item and fulfillment, as a revoke of lines finds them.
			pl.grants = append(pl.grants, pg)
		}
		out = append(out, pl)
	}
	return out, nil
}

// grantSKU is what a grant is sold as: the line's SKU, or for a bundle's
// contents the item (the catalog's default item id is its SKU).
func grantSKU(line storegate.Line, g storegate.Grant) string {
	if line.Bundle {
		if g.Currency != "" {
			return g.Currency
		}
		return g.Item
	}
	return line.SKU
}

type grantEntry struct {
	id       int64
	platform storegate.Platform
	currency string
	amount   int64
}

// grantEntries are the wallet entries a fulfillment made, by idempotency key.
func grantEntries(ctx context.Context, q querier, fulfillID, player string) (map[string]grantEntry, error) {
	rows, err := q.Query(ctx, `SELECT id, idempotency_key, platform, currency, amount FROM ledger_entries
		WHERE transaction_id = ? AND player_id = ? AND kind = 'fulfill' ORDER BY id`, fulfillID, player)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]grantEntry{}
	for rows.Next() {
		var e grantEntry
		var key string
		if err := rows.Scan(&e.id, &key, &e.platform, &e.currency, &e.amount); err != nil {
			return nil, err
		}
		out[key] = e
	}
	return out, rows.Err()
}

// legacyPlan rebuilds what a fulfillment recorded before its command was
// kept (before migration 0003) granted, from its rows: each grant becomes a
// line of its own, so nothing it granted escapes a full revoke.
func legacyPlan(ctx context.Context, q querier, c storegate.Command, entries map[string]grantEntry) ([]planLine, error) {
	keys := make([]string, 0, len(entries))
	for key := range entries {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	var out []planLine
	for _, key := range keys {
		e := entries[key]
		pl := planLine{sku: e.currency, typ: storegate.ItemCurrency, quantity: 1}
		pl.grants = []planGrant{{index: strings.TrimPrefix(key, c.Reverses+"/"), g: storegate.Grant{Currency: e.currency, Amount: e.amount},
			sku: e.currency, platform: e.platform, entry: &e.id}}
		out = append(out, pl)
	}
	rows, err := q.Query(ctx, `SELECT id, item, type, sku, granted_count, platform FROM ledger_entitlements
		WHERE transaction_id = ? AND player_id = ? ORDER BY id`, c.Reverses, c.PlayerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, item, typ, sku, platform string
		var n int64
		if err := rows.Scan(&id, &item, &typ, &sku, &n, &platform); err != nil {
			return nil, err
		}
		g := storegate.Grant{Item: item, Type: storegate.ItemType(typ), Quantity: n}
		out = append(out, planLine{sku: sku, typ: g.Type, quantity: 1, grants: []planGrant{{index: strings.TrimPrefix(id, c.Reverses+"/"),
			g: g, sku: sku, platform: storegate.Platform(platform), entitlementID: id}}})
	}
	return out, rows.Err()
}

// one scans the first row of a query into dest, reporting whether there
// was one.
func one(ctx context.Context, q querier, query string, args []any, dest ...any) (bool, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return false, rows.Err()
	}
	return true, rows.Scan(dest...)
}

// Revoke undoes a fulfillment once. With no lines it takes back everything
// the fulfillment named by c.Reverses granted; with lines (a partial refund)
// it takes back only those. Each entry follows the revocation rules;
// entries the rules refuse are listed as failed with their reason, and the
// revoke is still done (see Result.Revocation). Currency is taken from the
// balance of the platform it was bought on.
func (l *Ledger) Revoke(ctx context.Context, c storegate.Command) (Result, error) {
	if err := validate(c); err != nil {
		return Result{}, err
	}
	if c.Reverses == "" && len(c.Lines) == 0 {
		return Result{}, storegate.FieldError("revoke names neither a fulfillment nor lines", "reverses")
	}
	// The custom service is asked before the write: a network call inside
	// the shared group commit would stall every writer.
	var answers map[string]CustomAnswer
	if l.rules.anyCustom() {
		var n int
		if err := l.db.QueryRow(ctx, `SELECT COUNT(*) FROM ledger_transactions WHERE transaction_id = ?`, c.ID).Scan(&n); err != nil {
			return Result{}, err
		}
		if n == 0 { // a replay asks nothing
			lines, err := plan(ctx, l.db, c)
			if err != nil {
				return Result{}, err
			}
			if answers, err = l.askCustom(ctx, c, lines); err != nil {
				return Result{}, err
			}
		}
	}
	var out Result
	err := l.write(ctx, func(ctx context.Context, tx *engine.Tx) (err error) {
		out, err = l.revokeTx(ctx, tx, c, answers)
		return err
	})
	return out, err
}

// revokeTx is Revoke's write, inside tx, with the custom service's answers
// already in hand.
func (l *Ledger) revokeTx(ctx context.Context, tx *engine.Tx, c storegate.Command, answers map[string]CustomAnswer) (Result, error) {
	lines, err := plan(ctx, tx, c)
	if err != nil {
		return Result{}, err
	}
	prior, err := replay(ctx, tx, c.ID)
	if err != nil || prior != nil {
		if prior != nil {
			return *prior, nil
		}
		return Result{}, err
	}
	out := Result{TransactionID: c.ID, Kind: storegate.KindRevoke}
	// Recorded first: remaining() counts what this revoke takes as it goes.
	if err := record(ctx, tx, txn{id: c.ID, kind: string(storegate.KindRevoke), player: c.PlayerID, reverses: c.Reverses}, &out); err != nil {
		return Result{}, err
	}
	rev, err := l.apply(ctx, tx, c, lines, answers, &out)
	if err != nil {
		return Result{}, err
	}
	out.Revocation = rev
	if c.Reverses != "" && len(c.Lines) == 0 {
		if err := refundTx(ctx, tx, c, &out); err != nil {
			return Result{}, err
		}
	}
	raw, err := json.Marshal(rev)
	if err != nil {
		return Result{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ledger_revocations (id, player_id, transaction_id, source, status, record, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, rev.ID, c.PlayerID, rev.TransactionID, rev.Source, rev.Status, string(raw), tx.Now().UnixMicro()); err != nil {
		return Result{}, err
	}
	return out, finish(ctx, tx, c.ID, &out)
}

// askCustom asks the custom service about every entry whose strategy is
// custom, and returns the answers by entry index.
func (l *Ledger) askCustom(ctx context.Context, c storegate.Command, lines []planLine) (map[string]CustomAnswer, error) {
	answers := map[string]CustomAnswer{}
	for _, line := range lines {
		for _, pg := range line.grants {
			if l.rules.strategy(c.Source, pg.g) != StrategyCustom || l.rules.Custom == nil {
				continue
			}
			req := CustomRequest{RequestID: c.ID + "/" + pg.index, UserID: c.PlayerID, Namespace: l.rules.Namespace,
				Platform: pg.platform, TransactionID: c.ID, Reverses: c.Reverses}
			if pg.g.Currency != "" {
				req.EntryType, req.Quantity = "CURRENCY", pg.g.Amount
				req.Currency = &CustomCurrency{Namespace: l.rules.Namespace, CurrencyCode: pg.g.Currency, BalanceOrigin: balanceOrigin(pg.platform)}
			} else {
				left, err := l.usesLeft(ctx, c, pg)
				if err != nil {
					return nil, err
				}
				itemType, entType := agsItemType(pg.g.Type)
				req.EntryType, req.Quantity = "ITEM", itemQuantity(line, pg.g)
				req.Item = &CustomItem{ItemID: pg.g.Item, ItemSKU: pg.sku, ItemType: itemType, UseCount: left, EntitlementType: entType}
			}
			ans, err := l.rules.Custom.Revoke(ctx, req)
			if err == nil && ans.Status != StatusSuccess && ans.Status != StatusFail {
				err = fmt.Errorf("answered status %q, want SUCCESS or FAIL", ans.Status)
			}
			if err != nil {
				return nil, &CustomError{RequestID: req.RequestID, Err: err}
			}
			answers[pg.index] = ans
		}
	}
	return answers, nil
}

// itemQuantity is how many items an ITEM entry names, as AGS states it: a
// durable grant's quantity is its units; a consumable's is its uses, which
// the entry's useCount carries, so the entry names the line's items (one
// 3-use potion is quantity 1, useCount 3, as AGS's revocation sends it).
func itemQuantity(line planLine, g storegate.Grant) int64 {
	if consumable(g.Type) {
		return max(line.quantity, 1)
	}
	return max(g.Quantity, 1)
}

// usesLeft is what the custom service is told of an item's use count.
func (l *Ledger) usesLeft(ctx context.Context, c storegate.Command, pg planGrant) (int64, error) {
	var n int64
	var err error
	if pg.entitlementID != "" {
		err = l.db.QueryRow(ctx, `SELECT COALESCE(SUM(use_count), 0) FROM ledger_entitlements WHERE id = ?`, pg.entitlementID).Scan(&n)
	} else {
		q, args := `SELECT COALESCE(SUM(use_count), 0) FROM ledger_entitlements WHERE player_id = ? AND item = ? AND status = 'active'`, []any{c.PlayerID, pg.g.Item}
		if c.Reverses != "" {
			q, args = q+` AND transaction_id = ?`, append(args, c.Reverses)
		}
		err = l.db.QueryRow(ctx, q, args...).Scan(&n)
	}
	return n, err
}

// apply takes back every planned grant under the rules and builds the
// AGS-shaped record.
func (l *Ledger) apply(ctx context.Context, tx *engine.Tx, c storegate.Command, lines []planLine, answers map[string]CustomAnswer, out *Result) (*Revocation, error) {
	rev := &Revocation{ID: c.ID, Namespace: l.rules.Namespace, PlayerID: c.PlayerID, TransactionID: c.Reverses, Source: revocationSource(c, lines),
		Reason: reason(c), Sender: c.Source, OrderRef: c.OrderRef, Platform: string(platformOf(c)),
		ItemRevocations: []ItemRevocation{}, CreatedAt: tx.Now().UTC()}
	if rev.TransactionID == "" {
		rev.TransactionID = c.ID
	}
	for _, line := range lines {
		var children []ItemRevocation
		for _, pg := range line.grants {
			ir, err := l.revokeGrant(ctx, tx, c, pg, answers, out)
			if err != nil {
				return nil, err
			}
			children = append(children, ir)
		}
		if !line.bundle {
			rev.ItemRevocations = append(rev.ItemRevocations, children...)
			continue
		}
		parent := ItemRevocation{ItemID: line.sku, SKU: line.sku, ItemType: storegate.ItemBundle, Quantity: line.quantity,
			Status: StatusSuccess, Skipped: true, ItemRevocations: children}
		failed := 0
		for _, ch := range children {
			parent.Skipped = parent.Skipped && ch.Skipped
			if ch.Status == StatusFail {
				failed++
			}
		}
		if failed > 0 {
			parent.Status = StatusFail
			parent.Reason = fmt.Sprintf("%d of the bundle's %d contents could not be revoked", failed, len(children))
		}
		rev.ItemRevocations = append(rev.ItemRevocations, parent)
	}
	rev.StateInfo, rev.Status, rev.State = summarize(rev.ItemRevocations)
	rev.summaries()
	return rev, nil
}

// summarize builds the success and failed lists and the overall status.
func summarize(items []ItemRevocation) (StateInfo, string, string) {
	info := StateInfo{SuccessList: []StateEntry{}, FailedList: []StateEntry{}}
	succeeded, failed := 0, 0
	// place lists one entry as a success or a failure.
	place := func(ir ItemRevocation, ok, bad *[]StateEntry) {
		e := StateEntry{ItemID: ir.ItemID, SKU: ir.SKU, Quantity: ir.Quantity}
		if ir.Status == StatusFail {
			e.Error = ir.Reason
			*bad = append(*bad, e)
			failed++
			return
		}
		*ok = append(*ok, e)
		succeeded++
	}
	for _, ir := range items {
		if len(ir.ItemRevocations) == 0 {
			place(ir, &info.SuccessList, &info.FailedList)
			continue
		}
		// A bundle appears in each list with the children that belong there.
		ok := StateEntry{ItemID: ir.ItemID, SKU: ir.SKU, Quantity: ir.Quantity}
		bad := ok
		for _, ch := range ir.ItemRevocations {
			place(ch, &ok.Items, &bad.Items)
		}
		if len(ok.Items) > 0 {
			info.SuccessList = append(info.SuccessList, ok)
		}
		if len(bad.Items) > 0 {
			bad.Error = ir.Reason
			info.FailedList = append(info.FailedList, bad)
		}
	}
	switch {
	case failed == 0:
		return info, StatusSuccess, StateRevoked
	case succeeded == 0:
		return info, StatusFail, StateRevokeFailed
	}
	return info, StatusFail, StatePartiallyRevoked
}

// revocationSource is AGS's source of a revoke: ORDER for Xsolla orders,
// IAP for third-party store purchases (DLC when they granted only durable
// content), OTHER otherwise.
func revocationSource(c storegate.Command, lines []planLine) string {
	switch platformOf(c) {
	case storegate.PlatformXsolla:
		return "ORDER"
	case storegate.PlatformSteam, storegate.PlatformEpic, storegate.PlatformXbox, storegate.PlatformPlayStation, storegate.PlatformTwitch:
		for _, l := range lines {
			for _, pg := range l.grants {
				if pg.g.Currency != "" || consumable(pg.g.Type) {
					return "IAP"
				}
			}
		}
		if len(lines) > 0 {
			return "DLC"
		}
		return "IAP"
	}
	return "OTHER"
}

// revokeGrant takes back one grant under its strategy. Its error is a store
// failure; a refusal under the rules is an ItemRevocation with status FAIL.
func (l *Ledger) revokeGrant(ctx context.Context, tx *engine.Tx, c storegate.Command, pg planGrant, answers map[string]CustomAnswer, out *Result) (ItemRevocation, error) {
	strategy := l.rules.strategy(c.Source, pg.g)
	ir := ItemRevocation{ItemID: pg.g.Item, SKU: pg.sku, ItemType: pg.g.Type, Quantity: max(pg.g.Quantity, 1), Strategy: strategy, Status: StatusSuccess}
	switch {
	case pg.g.Currency != "":
		ir.ItemID, ir.ItemType, ir.Quantity = pg.g.Currency, storegate.ItemCurrency, pg.g.Amount
	case ir.ItemType == "":
		ir.ItemType = storegate.ItemDurable
	}
	kind := grantKind(pg.g)
	switch {
	case !slices.Contains(storegate.RevocationActions(kind), strategy):
		// Only a command written by hand can carry one: take nothing and
		// leave it to support rather than guess.
		ir.Status, ir.Reason = StatusFail, fmt.Sprintf("revocation action %q does not apply to %s", strategy, kind)
		return ir, nil
	case strategy == StrategyNone:
		ir.Skipped, ir.Reason = true, "revocation of "+kind+" is turned off (none)"
		return ir, nil
	case strategy == StrategyCustom && l.rules.Custom == nil:
		ir.Status, ir.Reason = StatusFail, "the custom strategy applies but no custom revocation service is configured"
		return ir, nil
	}
	var ans CustomAnswer
	if strategy == StrategyCustom {
		var ok bool
		if ans, ok = answers[pg.index]; !ok {
			// The plan changed between asking and applying (it cannot for a
			// given revoke, but never act without an answer).
			return ir, &CustomError{RequestID: c.ID + "/" + pg.index, Err: errors.New("no answer for this entry")}
		}
		ir.CustomRevocation = ans.CustomRevocation
		if ans.Status == StatusFail {
			ir.Status, ir.Reason = StatusFail, "custom revocation service: "+orDefault(ans.Reason, "refused")
			return ir, nil
		}
		if ans.handledElsewhere() {
			ir.Skipped, ir.Reason = true, "handled by the custom revocation service"
			return ir, nil
		}
	}
	if pg.g.Currency != "" {
		return ir, l.revokeCurrency(ctx, tx, c, pg, strategy, &ir, out)
	}
	return ir, l.revokeItem(ctx, tx, c, pg, strategy, &ir, out)
}

func (l *Ledger) revokeCurrency(ctx context.Context, tx *engine.Tx, c storegate.Command, pg planGrant, strategy string, ir *ItemRevocation, out *Result) error {
	amount := pg.g.Amount
	if c.Reverses != "" {
		// Never take back more of a fulfillment than it granted and earlier
		// revokes of it left.
		left, err := remaining(ctx, tx, c.Reverses, c.PlayerID, pg.g.Currency, pg.platform)
		if err != nil {
			return err
		}
		amount = min(amount, left)
	}
	if amount <= 0 {
		ir.Skipped, ir.Reason = true, "already taken back by an earlier revoke"
		return nil
	}
	if strategy == CurrencyFailIfNegative {
		bal, _, err := balances(ctx, tx, c.PlayerID, pg.g.Currency)
		if err != nil {
			return err
		}
		if b := bal[pg.platform]; b < amount {
			ir.Status = StatusFail
			ir.Reason = fmt.Sprintf("the %s balance on %s is %d: taking back %d would leave it at %d, below 0",
				pg.g.Currency, pg.platform, b, amount, b-amount)
			return nil
		}
	}
	m, err := move(ctx, tx, entry{key: c.ID + "/" + pg.index, kind: string(storegate.KindRevoke), player: c.PlayerID, currency: pg.g.Currency,
		platform: pg.platform, amount: -amount, reason: reason(c), txn: c.ID, source: c.Source, orderRef: c.OrderRef, reverses: pg.entry})
	if err != nil {
		return err
	}
	ir.CreditRevocations = []CreditRevocation{{Currency: pg.g.Currency, Platform: pg.platform, Amount: amount, BalanceAfter: m.balanceAfter, EntryID: m.id}}
	out.Credits = append(out.Credits, CreditResult{Currency: pg.g.Currency, Platform: pg.platform, Amount: -amount, BalanceAfter: m.balanceAfter})
	return nil
}

func (l *Ledger) revokeItem(ctx context.Context, tx *engine.Tx, c storegate.Command, pg planGrant, strategy string, ir *ItemRevocation, out *Result) error {
	// The candidates: the entitlement the fulfillment created, or for a
	// revoke of lines the player's entitlements of the item (of the
	// fulfillment it names, if any), newest first.
	q, args := `SELECT `+entitlementColumns+` FROM ledger_entitlements WHERE id = ? AND player_id = ?`, []any{pg.entitlementID, c.PlayerID}
	if pg.entitlementID == "" {
		q, args = `SELECT `+entitlementColumns+` FROM ledger_entitlements WHERE player_id = ? AND item = ? AND status <> 'revoked'`, []any{c.PlayerID, pg.g.Item}
		if c.Reverses != "" {
			q, args = q+` AND transaction_id = ?`, append(args, c.Reverses)
		}
		q += ` ORDER BY granted_at DESC, id DESC`
	}
	rows, err := tx.Query(ctx, q+tx.ForUpdate(), args...)
	if err != nil {
		return err
	}
	var cands []Entitlement
	for rows.Next() {
		e, err := scanEntitlement(rows)
		if err != nil {
			rows.Close()
			return err
		}
		cands = append(cands, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(cands) == 0 || (len(cands) == 1 && cands[0].Status == StatusRevoked) {
		ir.Skipped, ir.Reason = true, "no active entitlement of "+pg.g.Item+" left to revoke (already revoked)"
		return nil
	}
	if !consumable(cands[0].Type) {
		// Durable: one entitlement per unit, so a line takes back as many.
		n := int(max(pg.g.Quantity, 1))
		for _, e := range cands[:min(n, len(cands))] {
			if err := l.take(ctx, tx, e, e.UseCount, ir, out); err != nil {
				return err
			}
		}
		return nil
	}
	// Consumable: one entitlement holds the uses.
	want := max(pg.g.Quantity, 1)
	if strategy == StrategyCustom { // the service said yes: take what is left
		e := cands[0]
		return l.take(ctx, tx, e, min(want, e.UseCount), ir, out)
	}
	for _, e := range cands {
		if e.Status == StatusActive && e.UseCount >= want {
			return l.take(ctx, tx, e, want, ir, out)
		}
	}
	e := cands[0]
	ir.Status = StatusFail
	switch {
	case e.Type == storegate.ItemLootBox || e.Type == storegate.ItemOptionBox:
		ir.Reason = fmt.Sprintf("the %s %s was opened: an opened box counts as consumed", e.Type, e.Item)
	case e.UseCount == 0:
		ir.Reason = fmt.Sprintf("every use of %s was consumed", e.Item)
	default:
		ir.Reason = fmt.Sprintf("%s has %d of %d uses left (%d consumed): fewer than the %d to revoke",
			e.Item, e.UseCount, e.GrantedCount, e.ConsumedCount, want)
	}
	return nil
}

// take removes n uses from an entitlement (all of a durable's), revoking it
// when none are left.
func (l *Ledger) take(ctx context.Context, tx *engine.Tx, e Entitlement, n int64, ir *ItemRevocation, out *Result) error {
	left := e.UseCount - n
	status := e.Status
	if left <= 0 {
		left, status = 0, StatusRevoked
	}
	if _, err := tx.Exec(ctx, `UPDATE ledger_entitlements SET use_count = ?, status = ?, updated_at = ? WHERE id = ?`,
		left, status, tx.Now().UnixMicro(), e.ID); err != nil {
		return err
	}
	if e.Type == storegate.ItemGameKey && status == StatusRevoked {
		if err := revokeKey(ctx, tx, e.ID); err != nil {
			return err
		}
	}
	ir.EntitlementRevocations = append(ir.EntitlementRevocations, EntitlementRevocation{EntitlementID: e.ID, ItemID: e.Item,
		Quantity: n, UseCountAfter: left, Status: status})
	out.Entitlements = append(out.Entitlements, e.ID)
	return nil
}

// remainingSQL is remaining's query. Its condition that reverses is not
// empty lets SQLite use ledger_transactions_reverses, which leaves
// fulfillments (reversing nothing) out.
const remainingSQL = `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger_entries
	WHERE transaction_id IN (SELECT CAST(? AS TEXT) UNION ALL SELECT transaction_id FROM ledger_transactions WHERE reverses = ? AND reverses <> '' AND player_id = ?)
	AND currency = ? AND platform = ?`

// remaining is how much of currency on platform the fulfillment fulfillID
// credited to player that no revoke of it (the running one included: Revoke
// records itself first) has taken back yet: one sum over the fulfillment's
// entries and its revokes' (found through their transactions' reverses;
// the player is checked there, not on the entries, so the transaction index
// is the one used).
func remaining(ctx context.Context, tx *engine.Tx, fulfillID, player, currency string, platform storegate.Platform) (int64, error) {
	var left int64
	err := tx.QueryRow(ctx, remainingSQL, fulfillID, fulfillID, player, currency, string(platform)).Scan(&left)
	return max(left, 0), err
}

func reason(c storegate.Command) string { return orDefault(c.Reason, "revoke") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
