//! The VERP return path: each delivery's envelope sender is the configured
//! bounce address with a short signed token naming the delivery
//! (`bounces+4711.1a2b3c4d.<hmac>@news.example.org`), so a bounce sent to it
//! says which delivery failed, whatever the relay wrote in the report.

use lettre::Address;

use crate::token::{Purpose, TokenKeys};

/// The return path of delivery `delivery_id`.
pub fn return_path(base: &Address, keys: &TokenKeys, delivery_id: i64) -> Address {
    let token = keys.sign_short(Purpose::Bounce, &delivery_id.to_string());
    Address::new(format!("{}+{token}", base.user()), base.domain())
        .expect("a checked address with a token of digits, dots and hex is an address")
}

/// The delivery a VERP address of `base` names, if its token verifies.
pub fn delivery_of(address: &str, base: &Address, keys: &TokenKeys) -> Option<i64> {
    let (local, domain) = address.trim().trim_matches(['<', '>']).rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(base.domain()) {
        return None;
    }
    let (user, token) = local.split_once('+')?;
    if !user.eq_ignore_ascii_case(base.user()) {
        return None;
    }
    keys.verify_short(Purpose::Bounce, token).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_path_names_its_delivery_and_a_forged_one_nothing() {
        let keys = TokenKeys::from_config(Some("s3cret"), []);
        let base: Address = "bounces@news.example.org".parse().unwrap();
        let path = return_path(&base, &keys, 4711);
        assert!(path.user().starts_with("bounces+4711."), "{path}");
        assert!(path.user().len() <= 64, "{path}");
        assert_eq!(delivery_of(path.as_ref(), &base, &keys), Some(4711));
        assert_eq!(
            delivery_of(&format!("<{}>", path.to_string().to_uppercase()), &base, &keys),
            Some(4711),
            "relays may change case"
        );
        let forged = path.to_string().replace("+4711.", "+4712.");
        assert_eq!(delivery_of(&forged, &base, &keys), None);
        let elsewhere = path.to_string().replace("news.example.org", "example.net");
        assert_eq!(delivery_of(&elsewhere, &base, &keys), None);
        assert_eq!(delivery_of("bounces@news.example.org", &base, &keys), None);
        let other_keys = TokenKeys::from_config(Some("other"), []);
        assert_eq!(delivery_of(path.as_ref(), &base, &other_keys), None);
    }
}
