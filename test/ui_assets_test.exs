defmodule ElixirScope.UIAssetsTest do
  @moduledoc """
  The page's static files: the vendored libraries are exactly the ones the manifest
  pins (SHA-256), with their licenses; nothing is fetched from the internet; and the
  core assets stay within their 100 KB gzip budget (measured here, gzipped as the
  server gzips them).
  """
  use ExUnit.Case, async: true

  alias ElixirScope.UI.Assets

  @vendor Path.join(Assets.root(), "vendor")

  test "every vendored file matches its SHA-256 in the manifest, and the manifest lists them all" do
    manifest = ElixirScope.Test.JSON.decode!(File.read!(Path.join(@vendor, "MANIFEST.json")))
    shipped = @vendor |> File.ls!() |> Enum.reject(&(&1 == "MANIFEST.json")) |> Enum.sort()
    assert Enum.sort(Map.keys(manifest["sha256"])) == shipped

    for {file, sha} <- manifest["sha256"] do
      actual =
        :crypto.hash(:sha256, File.read!(Path.join(@vendor, file))) |> Base.encode16(case: :lower)

      assert actual == sha, "#{file} differs from the manifest: re-run scripts/vendor_ui.sh"
    end

    for package <- manifest["packages"] do
      assert package["version"] =~ ~r/^\d+\.\d+\.\d+$/
      assert package["npm_integrity"] =~ ~r/^sha512-/
      license = "LICENSE.#{package["name"]}.txt"
      assert Map.has_key?(package["files"], license)
      assert File.read!(Path.join(@vendor, license)) =~ ~r/MIT|Apache/
    end
  end

  test "no file loads anything from elsewhere" do
    for {path, _, _} <- Assets.sizes(), Path.extname(path) in [".js", ".mjs", ".css", ".html"] do
      {_type, body, _gz} = Assets.fetch(Path.split(path))
      refute body =~ ~r/(import|from)\s*["'](https?:)?\/\//, path
      refute body =~ ~r/url\(\s*["']?(https?:)?\/\//, path
      refute body =~ ~r/(src|href)=["'](https?:)?\/\//, path
      refute body =~ ~r/\beval\(|new Function\(/, path
    end
  end

  test "the core assets weigh at most 100 KB gzipped" do
    core =
      for {path, _raw, gz} <- Assets.sizes(),
          Path.extname(path) in [".html", ".js", ".mjs", ".css"],
          do: {path, gz}

    total = core |> Enum.map(&elem(&1, 1)) |> Enum.sum()
    assert total <= 100 * 1024, "core assets: #{total} bytes gzipped: #{inspect(core)}"
  end
end
