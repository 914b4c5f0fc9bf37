//! `chaoslab load`: a Locust-style load generator (placeholder, being written).
