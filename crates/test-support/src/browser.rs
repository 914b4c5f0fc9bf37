//! Headless browsers for the tests that open a page for real (the HTML
//! reports, the console): where Chromium is, under the missing-tool policy
//! of [`crate::tool`].

use crate::tool;

/// The Chromium command on this machine, if any.
pub fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| tool::runs(name, &["--version"]))
        .map(str::to_owned)
}

/// Chromium, or `None` after the missing-tool policy (fails under CI).
pub fn chromium_or_skip() -> Option<String> {
    let found = chromium();
    tool::present_or_skip(
        found.is_some(),
        "chromium is not installed (apt-get install -y chromium)",
    );
    found
}

/// Whether chromedriver runs, after the missing-tool policy.
pub fn chromedriver_or_skip() -> bool {
    tool::present_or_skip(
        tool::runs("chromedriver", &["--version"]),
        "chromedriver is not installed (apt-get install -y chromium chromium-driver)",
    )
}
