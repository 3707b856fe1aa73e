//! A picture of another device's pairing QR code gives back its code; other
//! pictures and non-pictures are refused with a clear error.

use polykey_node::code_from_qr_image;

fn png_of_qr(text: &str) -> Vec<u8> {
    let qr = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let picture = qr
        .render::<image::Luma<u8>>()
        .min_dimensions(400, 400)
        .build();
    let mut png = Vec::new();
    picture
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

#[test]
fn the_code_is_read_back_from_a_picture_of_its_qr_code() {
    let code = "polykey-pair:eyJuIjoidjEyMyIsImEiOltdLCJ3IjoiYSBiIGMgZCIsImUiOjF9";
    assert_eq!(code_from_qr_image(&png_of_qr(code)).unwrap(), code);
}

#[test]
fn other_pictures_and_other_files_are_refused() {
    for bytes in [
        png_of_qr("https://example.org/not-a-pairing-code"),
        b"not a picture at all".to_vec(),
        Vec::new(),
    ] {
        let err = code_from_qr_image(&bytes).unwrap_err();
        assert!(err.to_string().contains("no pairing QR code"), "{err}");
    }
}
