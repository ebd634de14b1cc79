# kato as a Nix derivation. The flake builds it with pkgsStatic (musl,
# statically linked); callPackage from plain nixpkgs gives a dynamic build.
{ lib, rustPlatform }:

let
  manifest = (lib.importTOML ../Cargo.toml).package;
in
rustPlatform.buildRustPackage {
  pname = manifest.name;
  inherit (manifest) version;

  # The source tree without VCS data, build output or release artefacts.
  src = lib.cleanSourceWith {
    src = lib.cleanSource ../.;
    filter =
      path: type:
      let
        base = baseNameOf (toString path);
      in
        !(
          type == "directory"
          && builtins.elem base [
            "target"
            "dist"
            "result"
          ]
        );
  };

  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [
    "--bin"
    "kato"
  ];

  # The test suite exercises kernel confinement (Landlock, seccomp) per stage
  # and reads provider fixtures from outside the source tree; it runs in the
  # project's own gate, and the NixOS VM test (flake checks) exercises the
  # installed service.
  doCheck = false;

  meta = {
    description = manifest.description;
    homepage = manifest.repository;
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "kato";
    platforms = lib.platforms.linux;
  };
}
