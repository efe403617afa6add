package schemas_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"storegate"
	"storegate/mapping"
	"storegate/schemas"
)

// TestDecode_TheDecoderSeesWhatTheSchemaSaw tries keys that Go's decoder
// would take for a declared property, and keys the schema never looked at.
func TestDecode_TheDecoderSeesWhatTheSchemaSaw(t *testing.T) {
	s, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	const items = `"items":[{"sku":"gem","quantity":1}]`
	for _, tc := range []struct {
		name, doc string
		field     string // the refused field; "" when decoded
		wantQty   int64
		wantUser  string
	}{
		{"plain", `{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},` + items + `}`, "", 1, "p1"},
		{"upper-case twin of items", `{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},` + items +
			`,"ITEMS":[{"sku":"gem","quantity":1000000}]}`, "ITEMS", 0, ""},
		{"twin alone, where the schema needs items", `{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},"Items":[{"sku":"gem","quantity":5}]}`,
			"Items", 0, ""},
		{"nested twin", `{"notification_type":"order_paid","user":{"external_id":"p1","EXTERNAL_ID":"p2"},"order":{"id":7},` + items + `}`,
			"user.EXTERNAL_ID", 0, ""},
		{"Kelvin sign folds to k", `{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},` +
			`"items":[{"sku":"gem","s\u212au":"diamond","quantity":1}]}`, "items.0.s\u212au", 0, ""},
		{"long s folds to s", `{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},"item\u017f":[{"sku":"gem","quantity":9}],` + items + `}`,
			"item\u017f", 0, ""},
		{"duplicate key", `{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},` + items + `,` + items + `}`,
			"items", 0, ""},
		{"undeclared key is not decoded", `{"notification_type":"order_paid","user":{"external_id":"p1","id":"p9"},"order":{"id":7},` + items + `}`,
			"", 1, "p1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n mapping.XsollaNotification
			err := s.Decode("xsolla/order_paid", []byte(tc.doc), &n)
			if tc.field != "" {
				var e *storegate.Error
				if !errors.As(err, &e) || e.Code != storegate.CodeInvalidParameter || !reflect.DeepEqual(e.Fields, []string{tc.field}) {
					t.Fatalf("err = %v, want INVALID_PARAMETER naming %q", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(n.Items) != 1 || n.Items[0].Quantity != tc.wantQty || n.PlayerID() != tc.wantUser || n.User.ID != "" {
				t.Fatalf("decoded %+v, want one item of %d for %s and no user.id", n, tc.wantQty, tc.wantUser)
			}
		})
	}
}

func TestDecode_IDsInEitherForm(t *testing.T) {
	s, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{"notification_type":"refund","user":{"id":42},"transaction":{"id":9,"external_id":1},"refund_details":{"code":2}}`,
		`{"notification_type":"refund","user":{"id":"42"},"transaction":{"id":"9","external_id":"1"},"refund_details":{"code":"2"}}`,
	} {
		var n mapping.XsollaNotification
		if err := s.Decode("xsolla/refund", []byte(doc), &n); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if n.User.ID != "42" || n.Transaction.ID != 9 || n.Transaction.ExternalID != "1" || n.RefundDetails.Code != 2 {
			t.Errorf("%s: decoded %+v %+v %+v", doc, n.User, *n.Transaction, *n.RefundDetails)
		}
	}
}

func TestDecode_RefusesWhatIsNotOneJSONValue(t *testing.T) {
	s, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{``, `{`, `{"notification_type":"payment"} {}`, `[` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 101),
		`{"notification_type":"payment",}`} {
		err := s.Decode("xsolla/notification", []byte(doc), nil)
		if storegate.ErrorCode(err) != storegate.CodeInvalidParameter {
			t.Errorf("%.40q: err = %v, want INVALID_PARAMETER", doc, err)
		}
	}
}

// A type that picks fields out of an object the schema takes whole is a
// programming error, refused before any body is decoded.
func TestDecode_RefusesATypeThatReadsPastTheSchema(t *testing.T) {
	s, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	// xsolla/acknowledged declares user.id and user.external_id only; name
	// is dropped, so this type is fine.
	if err := s.Decode("xsolla/acknowledged", []byte(`{"notification_type":"redeem_key","user":{"name":"x"}}`), &v); err != nil {
		t.Fatalf("a field the schema does not declare stays empty: %v", err)
	}
	var w struct {
		Attributes struct {
			Level int `json:"level"`
		} `json:"custom_parameters"`
	}
	err = s.Decode("answers/xsolla_transaction_info", []byte(`{"id":"1","custom_parameters":{"level":3}}`), &w)
	if storegate.ErrorCode(err) != storegate.CodeInternal {
		t.Fatalf("err = %v, want an internal error: custom_parameters is free-form", err)
	}
}

// FuzzDecode: whatever the body, Decode answers nil or INVALID_PARAMETER,
// and what it decodes passed the schema.
func FuzzDecode(f *testing.F) {
	s, err := schemas.Load()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},"items":[{"sku":"a","quantity":1}]}`,
		`{"notification_type":"refund","user":{"id":42},"transaction":{"id":"9","external_id":1},"refund_details":{"code":"2"}}`,
		`{"notification_type":"order_paid","ITEMS":[],"items":[],"items":[]}`,
		`{"a":[1,2,{"b":null}],"\u212a":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, name := range []string{"xsolla/order_paid", "xsolla/refund", "xsolla/acknowledged", "partners/payment", "stores/steam"} {
			var n mapping.XsollaNotification
			var v any = &n
			if !strings.HasPrefix(name, "xsolla/") {
				v = &map[string]any{}
			}
			err := s.Decode(name, doc, v)
			if err != nil && storegate.ErrorCode(err) != storegate.CodeInvalidParameter {
				t.Fatalf("%s: unexpected error kind %v", name, err)
			}
			if err == nil {
				if verr := s.Validate(name, doc); verr != nil {
					t.Fatalf("%s: decoded a body its schema refuses: %v", name, verr)
				}
			}
		}
	})
}
