# home-manager module: services.kato, kato for the user who manages their
# own account (systemd.user.services.kato, as systemd/kato-user.service).
#
# The unit carries the same hardening as systemd/kato-user.service
# (nix/units.nix; ci/nix-check compares the two). The home directory is an
# empty tmpfs inside the unit; the provider roots are bound back read-only
# and the export roots read-write. Keep running after logout with
# `loginctl enable-linger $USER` (once, as the user or root).
{ config
, lib
, pkgs
, ...
}:

let
  cfg = config.services.kato;
  units = import ./units.nix;
  toml = pkgs.formats.toml { };
  home = config.home.homeDirectory;
  inherit (lib)
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    types
    ;
  absolutePath = types.strMatching "/.*";

  configFile = toml.generate "kato-config.toml" (lib.recursiveUpdate
    {
      providers = lib.mapAttrs
        (_provider: roots: {
          inherit roots;
          enabled = roots != [ ];
        })
        cfg.providerRoots;
      exports = {
        allowed_roots = cfg.exportRoots;
      } // lib.optionalAttrs (cfg.exportRoots != [ ]) {
        default_dir = lib.head cfg.exportRoots;
      };
      sandbox.mode = "enforce";
    }
    cfg.settings);
in
{
  options.services.kato = {
    enable = mkEnableOption "kato, a sandboxed observer of coding-agent sessions (user service)";

    package = mkPackageOption pkgs "kato" { };

    providerRoots = mkOption {
      type = types.attrsOf (types.listOf absolutePath);
      default = { };
      example = {
        claude = [ "/home/alice/.claude/projects" ];
        aider = [ "/home/alice/src/webapp" ];
      };
      description = ''
        Session-log directories per provider, bound read-only into the unit
        (a missing one is skipped). Every provider's default roots under the
        home directory (nix/provider-roots.nix) apply unless a provider is
        set here; `[ ]` disables one.
      '';
    };

    exportRoots = mkOption {
      type = types.listOf absolutePath;
      default = [ "${home}/kato-exports" ];
      defaultText = lib.literalExpression ''[ "''${config.home.homeDirectory}/kato-exports" ]'';
      description = ''
        Directories kato may write exports to; the only writable paths of
        the home directory inside the unit. Each must exist.
      '';
    };

    settings = mkOption {
      inherit (toml) type;
      default = { };
      example = {
        markdown.thinking = true;
      };
      description = "Further kato configuration, merged over what the options above generate.";
    };

    extraHardening = mkOption {
      type = types.attrsOf types.unspecified;
      default = { };
      example = {
        MemoryMax = "512M";
      };
      description = "Systemd [Service] settings merged over the built-in hardening.";
    };
  };

  config = mkIf cfg.enable {
    # The defaults per provider, so that setting one keeps the others.
    services.kato.providerRoots = lib.mapAttrs (_provider: lib.mkDefault) (units.homeRoots home);

    home.packages = [ cfg.package ];

    xdg.configFile."kato/config.toml".source = configFile;

    systemd.user.services.kato = {
      Unit = {
        Description = "kato, a sandboxed observer of coding-agent sessions";
        Documentation = "https://example.invalid/kato/README.md";
        X-Restart-Triggers = [ "${configFile}" ];
      };
      Service =
        units.userService
          {
            exe = lib.getExe cfg.package;
            providerRoots = lib.concatLists (lib.attrValues cfg.providerRoots);
            inherit (cfg) exportRoots;
          }
        // cfg.extraHardening;
      Install.WantedBy = [ "default.target" ];
    };
  };
}
