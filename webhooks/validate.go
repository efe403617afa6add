package webhooks

import (
	"errors"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"

	"storegate"
)

// newValidator reports fields by their JSON names, as the answers do.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	return v
}

// validationError turns the validator's complaint into INVALID_PARAMETER
// naming each field as a dotted JSON path ("items.0.sku").
func validationError(err error) error {
	var ve validator.ValidationErrors
	if !errors.As(err, &ve) {
		return storegate.FieldError("payload is incomplete")
	}
	var fields []string
	for _, fe := range ve {
		path := fe.Namespace()
		if _, rest, ok := strings.Cut(path, "."); ok {
			path = rest // drop the root struct's name
		}
		path = strings.NewReplacer("[", ".", "]", "").Replace(path)
		fields = append(fields, path)
	}
	return storegate.FieldError("payload is incomplete: "+strings.Join(fields, ", ")+" missing or out of range", fields...)
}

// clipText shortens a sender's text before an answer names it.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
