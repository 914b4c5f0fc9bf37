//! The local lab platform behind `chaoslab up` (placeholder, being written).
