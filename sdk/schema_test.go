package sdk

import (
	"errors"
	"strings"
	"testing"
)

func TestSchemaCheck(t *testing.T) {
	good := func() Schema {
		return Schema{Type: "push-over_2", Label: "Pushover", Fields: []Field{
			{Key: "token", Label: "Token", Type: FieldSecret, Required: true},
			{Key: "port", Label: "Port", Type: FieldNumber, Default: "587"},
			{Key: "tls", Label: "TLS", Type: FieldBool, Default: "true"},
			{Key: "sound", Label: "Sound", Type: FieldText},
		}}
	}
	tests := []struct {
		name   string
		mutate func(*Schema)
		want   string // substring of the error, "" for none
	}{
		{"well formed", func(*Schema) {}, ""},
		{"no fields", func(s *Schema) { s.Fields = nil }, ""},
		{"upper-case type", func(s *Schema) { s.Type = "Pushover" }, "type"},
		{"type starting with digit", func(s *Schema) { s.Type = "1push" }, "type"},
		{"empty label", func(s *Schema) { s.Label = " " }, "label is empty"},
		{"bad key", func(s *Schema) { s.Fields[0].Key = "api-key" }, "does not match"},
		{"duplicate key", func(s *Schema) { s.Fields[1].Key = "token" }, "duplicate"},
		{"reserved key", func(s *Schema) { s.Fields[3].Key = "min_level" }, "reserved"},
		{"unknown type", func(s *Schema) { s.Fields[3].Type = "password" }, "unknown type"},
		{"bad number default", func(s *Schema) { s.Fields[1].Default = "five" }, "must be a number"},
		{"bad bool default", func(s *Schema) { s.Fields[2].Default = "yes please" }, "true or false"},
		{"field without label", func(s *Schema) { s.Fields[3].Label = "" }, "label is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			tt.mutate(&s)
			err := s.Check()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Check() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestSchemaValidateNamesTheField(t *testing.T) {
	s := Schema{Type: "x", Label: "X", Fields: []Field{
		{Key: "host", Label: "Host", Type: FieldText, Required: true},
		{Key: "port", Label: "Port", Type: FieldNumber, Required: true, Default: "25"},
		{Key: "tls", Label: "TLS", Type: FieldBool},
	}}
	tests := []struct {
		name    string
		cfg     Config
		wantKey string
		wantErr error
	}{
		{"valid with default port", Config{"host": "mx"}, "", nil},
		{"missing required", Config{}, "host", ErrRequired},
		{"blank required", Config{"host": " \t"}, "host", ErrRequired},
		{"number not a number", Config{"host": "mx", "port": "smtp"}, "port", ErrNotNumber},
		{"bool not a bool", Config{"host": "mx", "tls": "sometimes"}, "tls", ErrNotBool},
		{"unknown keys ignored", Config{"host": "mx", "colour": "red"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(tt.cfg)
			if !errors.Is(err, tt.wantErr) || ErrorField(err) != tt.wantKey {
				t.Fatalf("Validate() = %v (field %q), want %v on %q", err, ErrorField(err), tt.wantErr, tt.wantKey)
			}
			if err != nil && !strings.HasPrefix(err.Error(), tt.wantKey+": ") {
				t.Errorf("message %q does not start with the key", err)
			}
		})
	}
}

func TestSettingsGetters(t *testing.T) {
	schema := Schema{Fields: []Field{{Key: "n", Type: FieldNumber}, {Key: "frac", Type: FieldNumber},
		{Key: "b", Type: FieldBool}, {Key: "list", Type: FieldText}, {Key: "s", Type: FieldText},
		{Key: "pw", Type: FieldSecret}, {Key: "d", Type: FieldNumber, Default: "7"}}}
	cfg, err := NewSettings(schema, Config{"n": " 42 ", "frac": "2.5", "b": "true", "list": "a@x, b@x,\n c@x ,,", "s": "  v ", "pw": " p w "})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := cfg.Int("n"); !ok || got != 42 {
		t.Errorf("Int(n) = %d, %v, want 42", got, ok)
	}
	if _, ok := cfg.Int("frac"); ok {
		t.Error("Int(frac) is ok for 2.5")
	}
	if _, ok := cfg.Int("absent"); ok {
		t.Error("Int(absent) is ok")
	}
	if got, ok := cfg.Int("d"); !ok || got != 7 {
		t.Errorf("Int(d) = %d, %v, want the default 7", got, ok)
	}
	if !cfg.Bool("b") || cfg.Bool("absent") {
		t.Error("Bool did not parse or default as expected")
	}
	if got := strings.Join(cfg.List("list"), "|"); got != "a@x|b@x|c@x" {
		t.Errorf("List = %q", got)
	}
	if cfg.List("absent") != nil {
		t.Error("List(absent) should be nil")
	}
	if got := cfg.String("s"); got != "v" {
		t.Errorf("String = %q", got)
	}
	if got := cfg.Raw("pw"); got != " p w " {
		t.Errorf("Raw = %q", got)
	}
	if (Settings{}).String("s") != "" {
		t.Error("the zero Settings is not empty")
	}
}

func TestNewSettingsChecksAfterDefaults(t *testing.T) {
	schema := Schema{Fields: []Field{{Key: "host", Type: FieldText, Required: true}, {Key: "port", Type: FieldNumber, Required: true, Default: "587"}}}
	if _, err := NewSettings(schema, Config{"port": "25"}); !errors.Is(err, ErrRequired) || ErrorField(err) != "host" {
		t.Errorf("NewSettings without host = %v, want ErrRequired on host", err)
	}
	if _, err := NewSettings(schema, Config{"host": "mx", "port": "smtp"}); !errors.Is(err, ErrNotNumber) || ErrorField(err) != "port" {
		t.Errorf("NewSettings with port smtp = %v, want ErrNotNumber on port", err)
	}
	in := Config{"host": "mx"}
	cfg, err := NewSettings(schema, in)
	if err != nil || cfg.String("port") != "587" {
		t.Errorf("NewSettings = %v, port %q, want the default 587", err, cfg.String("port"))
	}
	if _, ok := in["port"]; ok {
		t.Error("NewSettings modified its argument")
	}
}

func TestWithDefaultsFillsOnlyEmptyFields(t *testing.T) {
	s := Schema{Fields: []Field{{Key: "port", Default: "587"}, {Key: "tls", Default: "starttls"}, {Key: "user"}}}
	in := Config{"port": "25", "tls": ""}
	out := in.WithDefaults(s)
	if out["port"] != "25" || out["tls"] != "starttls" {
		t.Errorf("WithDefaults = %v", out)
	}
	if _, ok := out["user"]; ok {
		t.Error("a field without default should stay absent")
	}
	if in["tls"] != "" {
		t.Error("WithDefaults modified its receiver")
	}
}
