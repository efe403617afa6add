package schemas_test

import (
	"errors"
	"reflect"
	"testing"

	"storegate"
	"storegate/schemas"
)

func mustLoad(t *testing.T) *schemas.Set {
	t.Helper()
	s, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoad_CompilesEverySchema(t *testing.T) {
	s := mustLoad(t)
	for _, name := range []string{"xsolla/notification", "xsolla/user_validation", "xsolla/user_search",
		"xsolla/create_external_transaction", "xsolla/payment", "xsolla/order_paid", "xsolla/order_canceled",
		"xsolla/refund", "xsolla/partial_refund", "xsolla/afs_reject",
		"answers/xsolla_user_attributes", "answers/xsolla_transaction_info", "answers/xsolla_user_search"} {
		if !s.Has(name) {
			t.Errorf("schema %s missing", name)
		}
	}
}

func TestValidate(t *testing.T) {
	s := mustLoad(t)
	for _, tc := range []struct {
		name, schema, doc string
		fields            []string // nil: valid
	}{
		{"order paid OK", "xsolla/order_paid",
			`{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},"items":[{"sku":"a","quantity":1}]}`, nil},
		{"extra fields are allowed", "xsolla/order_paid",
			`{"notification_type":"order_paid","user":{"external_id":"p1","x":1},"order":{"id":7,"amount":"3"},"items":[{"sku":"a","quantity":1,"promotions":[]}],"billing":{}}`, nil},
		{"missing order and sku", "xsolla/order_paid",
			`{"notification_type":"order_paid","user":{"external_id":"p1"},"items":[{"quantity":1}]}`, []string{"order", "items.0.sku"}},
		{"quantity zero", "xsolla/order_paid",
			`{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},"items":[{"sku":"a","quantity":0}]}`, []string{"items.0.quantity"}},
		{"id as a decimal string", "xsolla/order_paid",
			`{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":"7"},"items":[{"sku":"a","quantity":1}]}`, nil},
		{"id as a string that is not a number", "xsolla/order_paid",
			`{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":"7a"},"items":[{"sku":"a","quantity":1}]}`, []string{"order.id"}},
		{"id with a leading zero", "xsolla/order_paid",
			`{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":"07"},"items":[{"sku":"a","quantity":1}]}`, []string{"order.id"}},
		{"empty user id", "xsolla/user_validation", `{"notification_type":"user_validation","user":{"id":""}}`, []string{"user.id"}},
		{"linking rejects unknown top-level fields", "xsolla/create_external_transaction",
			`{"notification_type":"create_external_transaction","order_id":1,"user":{"external_id":"u"},"surprise":1}`, []string{"surprise"}},
		{"answer attributes OK", "answers/xsolla_user_attributes", `{"user_attributes":{"level":3,"tags":["a"]}}`, nil},
		{"answer attributes reject booleans", "answers/xsolla_user_attributes", `{"user_attributes":{"banned":false}}`, []string{"user_attributes.banned"}},
		{"answer transaction info needs id", "answers/xsolla_transaction_info", `{"custom_parameters":{"a":1}}`, []string{"id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Validate(tc.schema, []byte(tc.doc))
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("valid document rejected: %v", err)
				}
				return
			}
			var e *storegate.Error
			if !errors.As(err, &e) || e.Code != storegate.CodeInvalidParameter {
				t.Fatalf("err = %v, want INVALID_PARAMETER", err)
			}
			if !reflect.DeepEqual(e.Fields, tc.fields) {
				t.Fatalf("fields = %q, want %q (message %q)", e.Fields, tc.fields, e.Message)
			}
		})
	}
}

func TestValidate_MalformedJSON(t *testing.T) {
	err := mustLoad(t).Validate("xsolla/notification", []byte(`{"notification_type":`))
	if storegate.ErrorCode(err) != storegate.CodeInvalidParameter {
		t.Fatalf("err = %v, want INVALID_PARAMETER", err)
	}
}

func FuzzValidate(f *testing.F) {
	s, err := schemas.Load()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"notification_type":"order_paid","user":{"external_id":"p1"},"order":{"id":7},"items":[{"sku":"a","quantity":1}]}`))
	f.Add([]byte(`{"a":[1,2,{"b":null}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, name := range s.Names() {
			err := s.Validate(name, doc)
			if err != nil && storegate.ErrorCode(err) != storegate.CodeInvalidParameter {
				t.Fatalf("%s: unexpected error kind %v", name, err)
			}
		}
	})
}
