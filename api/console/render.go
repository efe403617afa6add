package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"storegate"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed assets/console.css
var styleSheet []byte

// pages are the templates by file name, each parsed with layout.html.
type pages map[string]*template.Template

const timeFormat = "2006-01-02 15:04:05Z"

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format(timeFormat)
	},
	// signed writes an amount with its sign, as a movement reads.
	"signed": func(n int64) string {
		if n > 0 {
			return "+" + strconv.FormatInt(n, 10)
		}
		return strconv.FormatInt(n, 10)
	},
	"path":      url.PathEscape,
	"hasPrefix": strings.HasPrefix,
	// last4 shows the end of a secret only.
	"last4": func(s string) string {
		if len(s) <= 4 {
			return "····"
		}
		return "····" + s[len(s)-4:]
	},
}

func loadPages() pages {
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := pages{}
	for _, name := range names {
		base := name[len("templates/"):]
		if base == "layout.html" {
			continue
		}
		out[base] = template.Must(template.Must(layout.Clone()).ParseFS(templateFiles, name))
	}
	return out
}

// view is what the layout reads: the page's title and data, and the
// signed-in operator with the token their forms carry.
type view struct {
	Title    string
	Operator string
	CSRF     string
	Data     any
}

// render writes a page with the layout around it.
func (h *handlers) render(c *fiber.Ctx, status int, page, title string, data any) error {
	v := view{Title: title, Data: data}
	if s := current(c); s != nil {
		v.Operator, v.CSRF = s.operator, s.csrf
	}
	var buf bytes.Buffer
	if err := h.pages[page].Execute(&buf, v); err != nil {
		return storegate.Internal(err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Status(status).Send(buf.Bytes())
}

type errorView struct {
	Status  int
	Code    storegate.Code
	Message string
	Fields  []string
}

// errorPage is the one way a console error is written: server's mapping
// chose the status, this writes the page.
func (h *handlers) errorPage(c *fiber.Ctx, e *storegate.Error) error {
	status := c.Response().StatusCode()
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	var buf bytes.Buffer
	v := view{Title: "Error", Data: errorView{Status: status, Code: e.Code, Message: e.Message, Fields: e.Fields}}
	if s := current(c); s != nil {
		v.Operator, v.CSRF = s.operator, s.csrf
	}
	if err := h.pages["error.html"].Execute(&buf, v); err != nil {
		return c.SendString(e.Message)
	}
	return c.Send(buf.Bytes())
}

func (h *handlers) handleCSS(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	return c.Send(styleSheet)
}
