package manifests

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var addons embed.FS

// Addons returns the add-on manifest templates.
func Addons() fs.FS { return addons }
