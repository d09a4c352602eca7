// The wiring lives in the OnboardingApp library (the tests build the same application); exported
// here so that every file of the executable sees its settings, `OpenedStore` and `buildApplication`.
@_exported import OnboardingApp
