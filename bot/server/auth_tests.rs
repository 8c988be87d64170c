use super::*;

fn claims(exp: Option<i64>) -> CustomerClaims {
    CustomerClaims {
        customer_id: "C1".into(),
        tier: Some("gold".into()),
        lifetime_value: Some(5000.0),
        name: None,
        email: None,
        exp,
    }
}

#[test]
fn customer_token_round_trips_and_rejects_a_forged_tier() {
    let signer = Signer::new("shop-secret");
    let claims = claims(Some(chrono::Utc::now().timestamp() + 600));
    let token = signer.sign(&claims);
    assert_eq!(signer.verify_customer(&token, 3600).unwrap(), claims);

    // The visitor rewrites the payload to claim platinum: the signature no longer fits.
    let (_, sig) = token.split_once('.').unwrap();
    let forged = URL_SAFE_NO_PAD.encode(br#"{"customer_id":"C1","tier":"platinum"}"#);
    assert!(matches!(
        signer.verify_customer(&format!("{forged}.{sig}"), 3600),
        Err(AuthError::BadSignature)
    ));
    // Another server's secret does not verify either.
    assert!(matches!(
        Signer::new("other").verify_customer(&token, 3600),
        Err(AuthError::BadSignature)
    ));
}

#[test]
fn each_purpose_has_its_own_key() {
    let keys = Keys::derive("a master secret of at least thirty-two bytes", None);
    let visitor = keys.widget.sign(&VisitorClaims::new_random());
    assert!(keys.widget.verify_visitor(&visitor).is_ok());
    assert!(keys.session.verify_visitor(&visitor).is_err());
    let customer = keys
        .widget
        .sign(&claims(Some(chrono::Utc::now().timestamp() + 60)));
    assert!(keys.customer.verify_customer(&customer, 3600).is_err());
    // A shop secret signs customers, and only customers.
    let shop = Keys::derive("a master secret of at least thirty-two bytes", Some("shop"));
    let token = Signer::new("shop").sign(&claims(Some(chrono::Utc::now().timestamp() + 60)));
    assert!(shop.customer.verify_customer(&token, 3600).is_ok());
    assert!(shop.widget.verify::<serde_json::Value>(&token).is_err());
    assert!(shop.session.verify::<serde_json::Value>(&token).is_err());
}

#[test]
fn customer_tokens_need_a_near_expiry() {
    let signer = Signer::new("s");
    let now = chrono::Utc::now().timestamp();
    let check = |exp| signer.verify_customer(&signer.sign(&claims(exp)), 3600);
    assert!(matches!(check(Some(1)), Err(AuthError::Expired)));
    assert!(matches!(check(None), Err(AuthError::NoExpiry)));
    assert!(matches!(
        check(Some(now + 7200)),
        Err(AuthError::TooLong(3600))
    ));
    assert!(check(Some(now + 60)).is_ok());
}

#[test]
fn scopes_allow_what_they_name() {
    assert!(Scope::Messages.allows(Scope::Messages));
    assert!(!Scope::Messages.allows(Scope::Agent));
    assert!(Scope::Lead.allows(Scope::Agent));
    assert!(!Scope::Lead.allows(Scope::Messages));
    assert!(!Scope::Lead.allows(Scope::Admin));
    assert!(Scope::Admin.allows(Scope::Messages) && Scope::Admin.allows(Scope::Admin));
}

#[test]
fn password_hash_verifies_only_the_right_password() {
    let hash = hash_password("correct horse").unwrap();
    assert!(hash.starts_with("$argon2"));
    assert!(verify_password("correct horse", &hash));
    assert!(!verify_password("wrong", &hash));
    assert!(!verify_password("correct horse", "not-a-hash"));
}
