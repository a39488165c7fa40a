package redact

import "testing"

func TestEndpoint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"postgres://user:secret@db:5432/k8s", "postgres://user:***@db:5432/k8s"},
		{"postgres://user@db/k8s", "postgres://user@db/k8s"},
		{"https://10.0.0.1:2379,https://10.0.0.2:2379", "https://10.0.0.1:2379,https://10.0.0.2:2379"},
		{"mysql://root:p@ss/w:rd@tcp(db:3306)/k8s", "mysql://root:***@tcp(db:3306)/k8s"},
		{"postgres://db/k8s?sslmode=disable&password=secret&x=1", "postgres://db/k8s?sslmode=disable&password=***&x=1"},
		{"host=db PASSWORD=secret dbname=k8s", "host=db PASSWORD=*** dbname=k8s"},
		{"root:secret@tcp(db:3306)/k8s", "root:***@tcp(db:3306)/k8s"},
		{"sqlite:///var/lib/regente/server/db/state.db?_journal=WAL", "sqlite:///var/lib/regente/server/db/state.db?_journal=WAL"},
	}
	for _, tt := range tests {
		if got := Endpoint(tt.in); got != tt.want {
			t.Errorf("Endpoint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
