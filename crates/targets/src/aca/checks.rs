//! The export's input checks, run before anything is written: each returns
//! one line naming the flag, what was given and what is expected, so bad
//! input exits 2 with a clear message ([`crate::BadInput`]).

/// Container app name: lower-case letters, digits and hyphens, starting with
/// a letter, ending with a letter or digit, no `--` (Azure's rule for
/// container app names, a DNS label), 2–24 characters so that the names
/// derived from it (`cae-NAME`, `appi-NAME`, …) stay within Azure's limits.
pub fn app_name(name: &str) -> Result<(), String> {
    let problem = if !(2..=24).contains(&name.len()) {
        Some(format!("is {} characters long", name.len()))
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("does not start with a lower-case letter".to_string())
    } else if !name.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        Some("does not end with a lower-case letter or a digit".to_string())
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!("contains {c:?}"))
    } else if name.contains("--") {
        Some("contains \"--\"".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(format!(
            "--name {name:?} is not a valid container app name: it {why}; expected a DNS label of 2-24 \
             lower-case letters, digits and single hyphens, starting with a letter (e.g. chaoslab)"
        )),
    }
}

/// Azure region: its short name (`japaneast`), as `az account
/// list-locations -o table` lists in the Name column.
pub fn location(location: &str) -> Result<(), String> {
    if (1..=40).contains(&location.len())
        && location
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "--location {location:?} is not an Azure region's short name: expected lower-case \
             letters and digits such as japaneast (see `az account list-locations -o table`)"
        ))
    }
}

/// Suffix of the globally unique names: 4–8 lower-case letters and digits.
pub fn suffix(suffix: &str) -> Result<(), String> {
    if (4..=8).contains(&suffix.len())
        && suffix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(format!(
            "--suffix {suffix:?} is not 4-8 lower-case letters and digits"
        ))
    }
}

/// Image reference: one word, no whitespace or control characters.
pub fn image(image: &str) -> Result<(), String> {
    if image.is_empty()
        || image.len() > 1024
        || image.starts_with('-')
        || image.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        Err(format!(
            "--image {image:?} is not an image reference such as myregistry.azurecr.io/chaoslab:0.1.0"
        ))
    } else {
        Ok(())
    }
}

/// Resource group name: 1–90 letters, digits, `-_.()`, not ending in `.`.
pub fn resource_group(group: &str) -> Result<(), String> {
    if (1..=90).contains(&group.chars().count())
        && !group.ends_with('.')
        && group
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
    {
        Ok(())
    } else {
        Err(format!(
            "--resource-group {group:?} is not a resource group name: 1-90 letters, digits, \
             '-', '_', '.', '(' or ')', not ending in '.'"
        ))
    }
}

/// A GUID such as a subscription id or a client id:
/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in hexadecimal.
pub fn guid(flag: &str, value: &str) -> Result<(), String> {
    let groups: Vec<&str> = value.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let ok = groups.len() == lengths.len()
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{flag} {value:?} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        ))
    }
}

/// Replica bounds and the CPU target of the scale rule.
pub fn scale(min: u32, max: u32, cpu: u32) -> Result<(), String> {
    if min > 1000 {
        return Err(format!("--min-replicas {min} is out of range: 0-1000"));
    }
    if !(1..=1000).contains(&max) {
        return Err(format!("--max-replicas {max} is out of range: 1-1000"));
    }
    if min > max {
        return Err(format!(
            "--min-replicas {min} is above --max-replicas {max}"
        ));
    }
    if !(1..=100).contains(&cpu) {
        return Err(format!(
            "--cpu-utilization {cpu} is out of range: 1-100 (percent)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        for good in [
            "chaoslab",
            "ab",
            "a1",
            "chaos-lab-01",
            "abcdefghijklmnopqrstuvwx",
        ] {
            assert!(app_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "Chaoslab",
            "1lab",
            "lab-",
            "la--b",
            "la_b",
            "läb",
            "lab.x",
            "abcdefghijklmnopqrstuvwxy",
        ] {
            let err = app_name(bad).unwrap_err();
            assert!(err.starts_with("--name"), "{err}");
        }
    }

    #[test]
    fn locations_suffixes_images() {
        assert!(location("japaneast").is_ok());
        assert!(location("Japan East").is_err());
        assert!(location("").is_err());
        assert!(suffix("k3x9q").is_ok());
        assert!(suffix("abc").is_err());
        assert!(suffix("ABCD").is_err());
        assert!(image("cr.azurecr.io/chaoslab:0.1.0").is_ok());
        assert!(image("a b").is_err());
        assert!(image("-x").is_err());
        assert!(image("").is_err());
    }

    #[test]
    fn groups_guids_scale() {
        assert!(resource_group("rg-chaos_lab.(1)").is_ok());
        assert!(resource_group("rg.").is_err());
        assert!(resource_group("rg/x").is_err());
        assert!(guid("--subscription", "00000000-1111-2222-3333-444444444444").is_ok());
        assert!(guid("--subscription", "0000-1111").is_err());
        assert!(guid("--subscription", "g0000000-1111-2222-3333-444444444444").is_err());
        assert!(scale(1, 5, 70).is_ok());
        assert!(scale(0, 1, 1).is_ok());
        assert!(scale(6, 5, 70).is_err());
        assert!(scale(1, 0, 70).is_err());
        assert!(scale(1, 5, 0).is_err());
        assert!(scale(1, 5, 101).is_err());
    }
}
