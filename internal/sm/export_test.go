package sm

// BlockMatch exposes blockMatch to the external tests.
var BlockMatch = blockMatch
