using Ddpm.Data;
using Ddpm.Evaluation;
using Ddpm.Runtime.Tests.Data;

namespace Ddpm.Runtime.Tests.Evaluation;

public class LabelledDatasetsTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Idx_folder_loads_both_splits_the_class_names_and_caches_in_the_folder(bool gzip)
    {
        using var dir = new TempFolder();
        LabelledFixture.Write(dir.Path, train: 12, test: 6, gzip: gzip);

        var data = LabelledDatasets.Load("idx:" + dir.Path);

        var (train, trainLabels) = LabelledFixture.Make(12, seed: 1);
        var (test, testLabels) = LabelledFixture.Make(6, seed: 2);
        Assert.Equal(train.Pixels, data.TrainImages.Pixels);
        Assert.Equal(trainLabels, data.TrainLabels);
        Assert.Equal(test.Pixels, data.TestImages.Pixels);
        Assert.Equal(testLabels, data.TestLabels);
        Assert.Equal(LabelledFixture.ClassNames, data.ClassNames);
        Assert.Equal(("idx:" + dir.Path, dir.Path, false, 1, 8), (data.Name, data.CacheFolder, data.FlipInvariant, data.Channels, data.ImageSize));
    }

    [Fact]
    public void Without_classes_txt_the_classes_are_the_label_numbers()
    {
        using var dir = new TempFolder();
        LabelledFixture.Write(dir.Path, train: 12, test: 6, classNames: false);
        Assert.Equal(["0", "1", "2"], LabelledDatasets.Load("idx:" + dir.Path).ClassNames);
    }

    [Fact]
    public void Classes_txt_skips_blank_lines_and_trims()
    {
        using var dir = new TempFolder();
        LabelledFixture.Write(dir.Path, train: 12, test: 6);
        File.WriteAllText(dir.File(LabelledDatasets.ClassNamesFile), "  row \n\ncolumn\nsquare\n\n");
        Assert.Equal(LabelledFixture.ClassNames, LabelledDatasets.Load("idx:" + dir.Path).ClassNames);
    }

    [Fact]
    public void Fewer_class_names_than_labels_is_invalid_data()
    {
        using var dir = new TempFolder();
        LabelledFixture.Write(dir.Path, train: 12, test: 6);
        File.WriteAllLines(dir.File(LabelledDatasets.ClassNamesFile), ["row", "column"]);
        var e = Assert.Throws<InvalidDataException>(() => LabelledDatasets.Load("idx:" + dir.Path));
        Assert.Equal($"idx:{dir.Path}: label 2 found, but the data set has 2 classes.", e.Message);
    }

    [Fact]
    public void A_missing_split_file_is_named()
    {
        using var dir = new TempFolder();
        LabelledFixture.Write(dir.Path, train: 12, test: 6);
        File.Delete(dir.File(FashionMnist.TestLabelsFile));
        var e = Assert.Throws<FileNotFoundException>(() => LabelledDatasets.Load("idx:" + dir.Path));
        Assert.StartsWith($"Dataset 'idx:{dir.Path}': t10k-labels-idx1-ubyte[.gz] is missing in {dir.Path}", e.Message);
    }

    [Theory]
    [InlineData("images:somewhere")]
    [InlineData("synthetic")]
    [InlineData("kmnist")]
    [InlineData("idx:")]
    public void Unlabelled_unknown_or_folderless_names_are_argument_errors(string name)
    {
        Assert.Throws<ArgumentException>(() => LabelledDatasets.Load(name));
    }

    [Fact]
    public void Validated_rejects_splits_that_disagree()
    {
        var (images, labels) = LabelledFixture.Make(6, seed: 1);
        var good = new LabelledDataset("t", images, labels, images, labels, LabelledFixture.ClassNames, false, ".");
        Assert.Same(good, good.Validated());

        Assert.Throws<InvalidDataException>(() => (good with { TrainLabels = labels[..5] }).Validated());
        Assert.Throws<InvalidDataException>(() => (good with { TestLabels = labels[..5] }).Validated());
        Assert.Throws<InvalidDataException>(() => (good with { ClassNames = ["only"] }).Validated());
        var wide = new ImageSet(new byte[6 * 8 * 4], 6, 1, 4, 8);
        Assert.Throws<InvalidDataException>(() => (good with { TrainImages = wide }).Validated());
        Assert.Throws<InvalidDataException>(() => (good with { TrainImages = wide, TestImages = wide }).Validated());
    }
}
