// Package configs reads the wandistd configuration file: YAML, its defaults
// and validation.
//
// Load and Parse decode the file into a Config. Every problem found —
// syntax errors, unknown or duplicate keys, values of the wrong type, bad
// durations, sizes, addresses, enums or public keys, missing required keys,
// duplicate peers — is collected and returned together as an ErrorList whose
// entries (*Error) name the file, the line and the key path, for example
//
//	east-1.yaml:12: peers[0].public_key: bad public key: ...
//
// Default returns a Config with every default filled, and Config.Validate
// applies the same checks (without line numbers) to a Config built in code.
// reference.md in this directory documents every key.
package configs
