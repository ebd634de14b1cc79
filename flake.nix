{
  description = "kato: a passive, sandboxed observer of coding-agent sessions";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        # Statically linked against musl, like the release binary.
        kato = pkgs.pkgsStatic.callPackage ./nix/package.nix { };
        kato-dynamic = pkgs.callPackage ./nix/package.nix { };
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.kato;
      });

      overlays.default = final: _prev: {
        kato = final.pkgsStatic.callPackage ./nix/package.nix { };
      };

      # The modules take their package from `pkgs` (mkPackageOption); the
      # flake only supplies the default. The NixOS module holds services.kato
      # (one system instance) and services.kato.instances.<name> (one per
      # user, as systemd/kato@.service).
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.kato.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      # home-manager: services.kato as a user service (systemd.user.services).
      homeManagerModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/home-manager.nix ];
          services.kato.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      checks = forAllSystems (pkgs: {
        inherit (self.packages.${pkgs.stdenv.hostPlatform.system}) kato;

        # Boots a VM with the module enabled and checks the running service
        # from the outside: confinement visible in /proc, exposure score, a
        # clean exit on SIGTERM, and kato's own report.
        nixos = pkgs.testers.runNixOSTest {
          name = "kato";
          nodes.machine =
            { ... }:
            {
              imports = [ self.nixosModules.default ];
              users.groups.kato-io = { };
              users.users.alice = {
                isNormalUser = true;
                extraGroups = [ "kato-io" ];
              };
              # A per-user instance with the default roots.
              users.users.bob.isNormalUser = true;
              systemd.tmpfiles.rules = [
                "d /home/alice 0711 alice users -"
                "d /home/alice/.claude 0750 alice kato-io -"
                "d /home/alice/.claude/projects 2750 alice kato-io -"
                "d /home/alice/notes 2770 alice kato-io -"
                "f /home/alice/private.txt 0644 alice users - not for kato"
                "d /home/bob/.claude/projects 0700 bob users -"
                "d /home/bob/kato-exports 0700 bob users -"
              ];
              services.kato.instances.bob = { };
              services.kato = {
                enable = true;
                supplementaryGroups = [ "kato-io" ];
                providerRoots.claude = [ "/home/alice/.claude/projects" ];
                exportRoots = [ "/home/alice/notes" ];
                settings.sandbox.mode = "enforce";
              };
            };
          testScript = ''
            machine.wait_for_unit("kato.service")

            pid = machine.succeed("systemctl show -p MainPID --value kato.service").strip()
            status = machine.succeed(f"cat /proc/{pid}/status")
            print(status)
            for line in ("NoNewPrivs:\t1", "Seccomp:\t2",
                         "CapInh:\t0000000000000000", "CapPrm:\t0000000000000000",
                         "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000",
                         "CapAmb:\t0000000000000000"):
                assert line in status, f"missing {line!r}"

            # Only the bound roots exist in kato's view of /home.
            machine.succeed(f"test -d /proc/{pid}/root/home/alice/.claude/projects")
            machine.succeed(f"test -d /proc/{pid}/root/home/alice/notes")
            machine.fail(f"test -e /proc/{pid}/root/home/alice/private.txt")

            machine.succeed("systemd-analyze security --threshold=5 kato.service")
            machine.succeed("kato --version")

            # The per-user instance: runs as bob, sees bob's roots only.
            machine.wait_for_unit("kato@bob.service")
            assert machine.succeed("systemctl show -p User --value kato@bob.service").strip() == "bob"
            bpid = machine.succeed("systemctl show -p MainPID --value kato@bob.service").strip()
            machine.succeed(f"test -d /proc/{bpid}/root/home/bob/.claude/projects")
            machine.fail(f"test -e /proc/{bpid}/root/home/alice/.claude")
            machine.succeed("systemd-analyze security --threshold=5 kato@bob.service")

            machine.succeed("systemctl stop kato.service")
            code = machine.succeed("systemctl show -p ExecMainStatus --value kato.service").strip()
            assert code == "0", f"kato exited with {code} on SIGTERM"
          '';
        };
      });
    };
}
